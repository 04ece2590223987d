//! Build script of `kuberay-api`.
//!
//! Everything is generated from the `.proto` files in the workspace's `proto/` folder, without
//! network access and without a `protoc` binary:
//!
//! 1. `protox` parses the protos (the well-known types are bundled) into a descriptor set, which is
//!    also written to `OUT_DIR` for gRPC reflection.
//! 2. `tonic-prost-build` generates the messages and the gRPC server/client modules.
//! 3. `pbjson-build` generates the serde (proto3 JSON) implementations.
//! 4. The `google.api.http` options are turned into a route table (`routes.rs`).
//! 5. Swagger 2.0 documents are produced for every proto file plus a merged one.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::env;
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, EnumDescriptor, ExtensionDescriptor, FieldDescriptor,
    FileDescriptor, Kind, MessageDescriptor, MethodDescriptor, Value,
};
use serde_json::{Map, Value as Json, json};

type BoxError = Box<dyn Error>;

/// The API's proto files, relative to `proto/`, in the order the documents are produced.
const PROTO_FILES: &[&str] = &[
    "cluster.proto",
    "config.proto",
    "error.proto",
    "job.proto",
    "job_submission.proto",
    "serve.proto",
];

/// Services that are defined but not served; their routes are listed in `ROUTES` (the server
/// filters them) but they are left out of every Swagger document.
const UNSERVED_SERVICES: &[&str] = &["proto.ImageTemplateService"];

/// Numbers of `google.api.FieldBehavior` values used for documentation.
const FIELD_BEHAVIOR_REQUIRED: i32 = 2;
const FIELD_BEHAVIOR_OUTPUT_ONLY: i32 = 3;

fn main() -> Result<(), BoxError> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let proto_root = manifest_dir.join("..").join("..").join("proto");
    let third_party = proto_root.join("third_party");

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", proto_root.display());

    // 1. Parse.
    let (encoded, pool) = parse_protos(&proto_root, &third_party, &out_dir)?;

    // 2. Messages and gRPC services.
    generate_messages_and_services(&encoded)?;

    // 3. JSON mapping.
    generate_json_mapping(&encoded)?;

    // 4. Routes.
    let http_ext = extension(&pool, "google.api.http")?;
    let behavior_ext = extension(&pool, "google.api.field_behavior")?;
    let files = api_files(&pool)?;
    let routes = write_routes(&files, &http_ext, &out_dir)?;

    // 5. Swagger.
    write_swagger(&files, &routes, &behavior_ext, &out_dir)?;

    Ok(())
}

/// Parses `PROTO_FILES` (and their imports) and writes the encoded descriptor set to
/// `OUT_DIR/kuberay_descriptor_set.bin` for gRPC reflection. Returns the encoded set and the
/// descriptor pool.
fn parse_protos(
    proto_root: &Path,
    third_party: &Path,
    out_dir: &Path,
) -> Result<(Vec<u8>, DescriptorPool), BoxError> {
    let mut compiler = protox::Compiler::new([proto_root, third_party])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(PROTO_FILES)?;
    // Unlike `file_descriptor_set()`, this keeps extension options (google.api.http, ...).
    let encoded = compiler.encode_file_descriptor_set();
    let pool = compiler.descriptor_pool();
    fs::write(out_dir.join("kuberay_descriptor_set.bin"), &encoded)?;
    Ok((encoded, pool))
}

/// Generates the prost messages and the tonic gRPC server and client modules into `OUT_DIR`.
/// The well-known types come from `pbjson-types` (prost still needs their descriptors to
/// analyse the messages that use them).
fn generate_messages_and_services(encoded: &[u8]) -> Result<(), BoxError> {
    let fds = prost_types::FileDescriptorSet::decode(encoded)?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_well_known_types(true)
        .codec_path("crate::codec::ProtoCodec")
        .extern_path(".google.protobuf", "::pbjson_types")
        // Our own Timestamp: protojson's JSON form (`...Z`), which pbjson-types does not write.
        .extern_path(".google.protobuf.Timestamp", "crate::Timestamp")
        .btree_map(".")
        .compile_fds(fds)?;
    Ok(())
}

/// Generates the serde (proto3 JSON) implementations of the `proto` package's messages into
/// `OUT_DIR`.
fn generate_json_mapping(encoded: &[u8]) -> Result<(), BoxError> {
    pbjson_build::Builder::new()
        .register_descriptors(encoded)?
        .use_integers_for_enums()
        .ignore_unknown_fields()
        .ignore_unknown_enum_variants()
        .btree_map(["."])
        .build(&[".proto"])?;
    Ok(())
}

/// The descriptors of `PROTO_FILES`, in that order.
fn api_files(pool: &DescriptorPool) -> Result<Vec<FileDescriptor>, BoxError> {
    PROTO_FILES
        .iter()
        .map(|name| {
            pool.get_file_by_name(name)
                .ok_or_else(|| format!("{name} missing from the descriptor pool").into())
        })
        .collect()
}

/// Collects the checked `google.api.http` route of every method of `files` (in declaration
/// order), writes them to `OUT_DIR/routes.rs` and returns them.
fn write_routes(
    files: &[FileDescriptor],
    http_ext: &ExtensionDescriptor,
    out_dir: &Path,
) -> Result<Vec<Route>, BoxError> {
    let mut routes = Vec::new();
    for file in files {
        for service in file.services() {
            for method in service.methods() {
                let route = http_route(&method, http_ext)?;
                check_route(&method, &route)?;
                routes.push(route);
            }
        }
    }
    fs::write(out_dir.join("routes.rs"), render_routes(&routes))?;
    Ok(routes)
}

/// Writes one Swagger document per file of `files` and a merged one to `OUT_DIR/swagger/`,
/// and their index (`FILES`) to `OUT_DIR/swagger.rs`.
fn write_swagger(
    files: &[FileDescriptor],
    routes: &[Route],
    behavior_ext: &ExtensionDescriptor,
    out_dir: &Path,
) -> Result<(), BoxError> {
    let swagger_dir = out_dir.join("swagger");
    fs::create_dir_all(&swagger_dir)?;
    let docs = Docs::new(files, behavior_ext);
    let mut merged = SwaggerDoc::default();
    let mut names = Vec::new();
    for file in files {
        let doc = docs.file_document(file, routes);
        let stem = file.name().trim_end_matches(".proto");
        let name = format!("{stem}.swagger.json");
        write_json(&swagger_dir.join(&name), &doc.render(file.name()))?;
        merged.merge(doc);
        names.push(name);
    }
    let merged_name = "kuberay_api.swagger.json".to_owned();
    write_json(
        &swagger_dir.join(&merged_name),
        &merged.render("kuberay_api.proto"),
    )?;
    names.push(merged_name);
    fs::write(out_dir.join("swagger.rs"), render_swagger_index(&names))?;
    Ok(())
}

fn extension(pool: &DescriptorPool, name: &str) -> Result<ExtensionDescriptor, BoxError> {
    pool.get_extension_by_name(name)
        .ok_or_else(|| format!("extension {name} is not defined").into())
}

fn write_json(path: &Path, value: &Json) -> Result<(), BoxError> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    fs::write(path, text)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

struct Route {
    service: String,
    method: String,
    http_method: String,
    pattern: String,
    body: Option<String>,
}

impl Route {
    fn path_vars(&self) -> Vec<&str> {
        self.pattern
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .collect()
    }
}

fn http_route(
    method: &MethodDescriptor,
    http_ext: &ExtensionDescriptor,
) -> Result<Route, BoxError> {
    let options = method.options();
    if !options.has_extension(http_ext) {
        return Err(format!("{} has no google.api.http option", method.full_name()).into());
    }
    let rule = match options.get_extension(http_ext).as_ref() {
        Value::Message(rule) => rule.clone(),
        other => return Err(format!("unexpected google.api.http value {other:?}").into()),
    };
    let (http_method, pattern) = rule_pattern(&rule)
        .ok_or_else(|| format!("{}: google.api.http has no pattern", method.full_name()))?;
    if let Some(Value::List(extra)) = rule.get_field_by_name("additional_bindings").as_deref()
        && !extra.is_empty()
    {
        return Err(format!(
            "{}: additional_bindings are not supported",
            method.full_name()
        )
        .into());
    }
    let body = match rule.get_field_by_name("body").as_deref() {
        Some(Value::String(body)) if !body.is_empty() => Some(body.clone()),
        _ => None,
    };
    Ok(Route {
        service: method.parent_service().full_name().to_owned(),
        method: method.name().to_owned(),
        http_method,
        pattern,
        body,
    })
}

fn rule_pattern(rule: &DynamicMessage) -> Option<(String, String)> {
    for verb in ["get", "put", "post", "delete", "patch"] {
        if rule.has_field_by_name(verb)
            && let Some(Value::String(path)) = rule.get_field_by_name(verb).as_deref()
        {
            return Some((verb.to_ascii_uppercase(), path.clone()));
        }
    }
    if rule.has_field_by_name("custom")
        && let Some(Value::Message(custom)) = rule.get_field_by_name("custom").as_deref()
    {
        let get = |name: &str| match custom.get_field_by_name(name).as_deref() {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        return Some((get("kind"), get("path")));
    }
    None
}

/// Every path variable and the body must name a field of the request message.
fn check_route(method: &MethodDescriptor, route: &Route) -> Result<(), BoxError> {
    let input = method.input();
    for var in route.path_vars() {
        if input.get_field_by_name(var).is_none() {
            return Err(format!(
                "{}: path variable {var} is not a request field",
                method.full_name()
            )
            .into());
        }
    }
    if let Some(body) = &route.body
        && body != "*"
        && input.get_field_by_name(body).is_none()
    {
        return Err(format!("{}: body {body} is not a request field", method.full_name()).into());
    }
    Ok(())
}

fn render_routes(routes: &[Route]) -> String {
    let mut out = String::from(
        "/// Every RPC with a `google.api.http` option, in proto declaration order.\n",
    );
    out.push_str("pub static ROUTES: &[HttpRoute] = &[\n");
    for r in routes {
        let body = match &r.body {
            Some(b) => format!("Some({b:?})"),
            None => "None".to_owned(),
        };
        let _ = writeln!(
            out,
            "    HttpRoute {{ service: {:?}, method: {:?}, http_method: {:?}, pattern: {:?}, body: {body} }},",
            r.service, r.method, r.http_method, r.pattern
        );
    }
    out.push_str("];\n");
    out
}

fn render_swagger_index(names: &[String]) -> String {
    let mut out = String::from(
        "/// The generated Swagger 2.0 documents as `(file name, JSON text)` pairs.\n\
         pub static FILES: &[(&str, &str)] = &[\n",
    );
    for name in names {
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!(concat!(env!(\"OUT_DIR\"), \"/swagger/{name}\"))),"
        );
    }
    out.push_str("];\n");
    out
}

// ---------------------------------------------------------------------------------------------
// Swagger
// ---------------------------------------------------------------------------------------------

/// One Swagger document under construction.
#[derive(Default)]
struct SwaggerDoc {
    tags: Vec<String>,
    /// path -> (lower-case verb, operation), in method order.
    paths: BTreeMap<String, Vec<(String, Json)>>,
    definitions: BTreeMap<String, Json>,
}

impl SwaggerDoc {
    fn merge(&mut self, other: SwaggerDoc) {
        self.tags.extend(other.tags);
        for (path, ops) in other.paths {
            self.paths.entry(path).or_default().extend(ops);
        }
        self.definitions.extend(other.definitions);
    }

    fn render(&self, title: &str) -> Json {
        let mut doc = Map::new();
        doc.insert("swagger".into(), json!("2.0"));
        doc.insert(
            "info".into(),
            json!({"title": title, "version": "version not set"}),
        );
        if !self.tags.is_empty() {
            let tags: Vec<Json> = self.tags.iter().map(|t| json!({ "name": t })).collect();
            doc.insert("tags".into(), Json::Array(tags));
        }
        doc.insert("schemes".into(), json!(["http"]));
        doc.insert("consumes".into(), json!(["application/json"]));
        doc.insert("produces".into(), json!(["application/json"]));
        let mut paths = Map::new();
        for (path, ops) in &self.paths {
            let mut item = Map::new();
            for (verb, op) in ops {
                item.insert(verb.clone(), op.clone());
            }
            paths.insert(path.clone(), Json::Object(item));
        }
        doc.insert("paths".into(), Json::Object(paths));
        let definitions: Map<String, Json> = self
            .definitions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        doc.insert("definitions".into(), Json::Object(definitions));
        Json::Object(doc)
    }
}

/// A type a definition must be produced for.
enum DefType {
    Message(MessageDescriptor),
    Enum(EnumDescriptor),
}

/// Shared state for producing documents: comments and the field_behavior extension.
struct Docs {
    /// file name -> (source path -> leading comment)
    comments: HashMap<String, HashMap<Vec<i32>, String>>,
    behavior_ext: ExtensionDescriptor,
}

impl Docs {
    fn new(files: &[FileDescriptor], behavior_ext: &ExtensionDescriptor) -> Self {
        let mut comments = HashMap::new();
        for file in files {
            let mut by_path = HashMap::new();
            if let Some(info) = &file.file_descriptor_proto().source_code_info {
                for loc in &info.location {
                    if let Some(text) = loc.leading_comments.as_deref() {
                        let text = clean_comment(text);
                        if !text.is_empty() {
                            by_path.insert(loc.path.clone(), text);
                        }
                    }
                }
            }
            comments.insert(file.name().to_owned(), by_path);
        }
        Docs {
            comments,
            behavior_ext: behavior_ext.clone(),
        }
    }

    fn comment(&self, file: &FileDescriptor, path: &[i32]) -> Option<String> {
        self.comments.get(file.name())?.get(path).cloned()
    }

    fn behaviors(&self, field: &FieldDescriptor) -> Vec<i32> {
        let options = field.options();
        if !options.has_extension(&self.behavior_ext) {
            return Vec::new();
        }
        match options.get_extension(&self.behavior_ext).as_ref() {
            Value::List(values) => values.iter().filter_map(Value::as_enum_number).collect(),
            Value::EnumNumber(n) => vec![*n],
            _ => Vec::new(),
        }
    }

    fn file_document(&self, file: &FileDescriptor, routes: &[Route]) -> SwaggerDoc {
        let mut doc = SwaggerDoc::default();
        let mut queue = VecDeque::new();
        for service in file.services() {
            if UNSERVED_SERVICES.contains(&service.full_name()) {
                continue;
            }
            doc.tags.push(service.name().to_owned());
            for method in service.methods() {
                let Some(route) = routes
                    .iter()
                    .find(|r| r.service == service.full_name() && r.method == method.name())
                else {
                    continue;
                };
                let op = self.operation(&method, route, &mut queue);
                doc.paths
                    .entry(route.pattern.clone())
                    .or_default()
                    .push((route.http_method.to_ascii_lowercase(), op));
            }
        }
        self.add_definitions(&mut doc.definitions, queue);
        doc.definitions
            .insert("googlerpcStatus".into(), rpc_status_definition());
        doc.definitions
            .insert("protobufAny".into(), any_definition());
        doc
    }

    /// The Swagger operation of `method`, served at `route`; the messages and enums its schemas
    /// refer to are pushed to `queue`.
    fn operation(
        &self,
        method: &MethodDescriptor,
        route: &Route,
        queue: &mut VecDeque<DefType>,
    ) -> Json {
        let service = method.parent_service();
        let mut op = Map::new();
        if let Some(summary) = self.comment(&method.parent_file(), method.path()) {
            op.insert("summary".into(), json!(summary));
        }
        op.insert(
            "operationId".into(),
            json!(format!("{}_{}", service.name(), method.name())),
        );
        op.insert("responses".into(), self.responses(method, queue));
        let params = self.parameters(&method.input(), route, queue);
        if !params.is_empty() {
            op.insert("parameters".into(), Json::Array(params));
        }
        op.insert("tags".into(), json!([service.name()]));
        Json::Object(op)
    }

    /// The `responses` of `method`'s operation: its output message, or an RPC status on error.
    fn responses(&self, method: &MethodDescriptor, queue: &mut VecDeque<DefType>) -> Json {
        json!({
            "200": {
                "description": "A successful response.",
                "schema": self.message_schema(&method.output(), queue),
            },
            "default": {
                "description": "An unexpected error response.",
                "schema": {"$ref": "#/definitions/googlerpcStatus"},
            },
        })
    }

    /// The parameters of an operation taking `input` at `route`: the path variables, then the
    /// body, then (unless the whole message is the body) the remaining scalar fields as query
    /// parameters.
    fn parameters(
        &self,
        input: &MessageDescriptor,
        route: &Route,
        queue: &mut VecDeque<DefType>,
    ) -> Vec<Json> {
        let path_vars = route.path_vars();
        let mut params = self.path_parameters(input, &path_vars);
        params.extend(self.body_parameter(input, route.body.as_deref(), queue));
        if route.body.as_deref() != Some("*") {
            params.extend(self.query_parameters(input, route, &path_vars));
        }
        params
    }

    /// One required `path` parameter per path variable that names a field of `input`.
    fn path_parameters(&self, input: &MessageDescriptor, path_vars: &[&str]) -> Vec<Json> {
        let mut params = Vec::new();
        for var in path_vars {
            let Some(field) = input.get_field_by_name(var) else {
                continue;
            };
            let mut p = self.parameter_base(var, &field, "path");
            p.insert("required".into(), json!(true));
            p.extend(scalar_param_type(&field));
            params.push(Json::Object(p));
        }
        params
    }

    /// The `body` parameter for the route's `body` option: the whole `input` message for `*`,
    /// else the named field (none if there is no body or the field does not exist).
    fn body_parameter(
        &self,
        input: &MessageDescriptor,
        body: Option<&str>,
        queue: &mut VecDeque<DefType>,
    ) -> Option<Json> {
        match body? {
            "*" => Some(json!({
                "name": "body",
                "in": "body",
                "required": true,
                "schema": self.message_schema(input, queue),
            })),
            body => {
                let field = input.get_field_by_name(body)?;
                let mut p = self.parameter_base("body", &field, "body");
                let required = self.behaviors(&field).contains(&FIELD_BEHAVIOR_REQUIRED);
                p.insert("required".into(), json!(required));
                p.insert("schema".into(), self.field_schema(&field, queue));
                Some(Json::Object(p))
            }
        }
    }

    /// One optional `query` parameter per field of `input` that is neither a path variable nor
    /// the body, and is not a map or a message (repeated fields become `multi` arrays).
    fn query_parameters(
        &self,
        input: &MessageDescriptor,
        route: &Route,
        path_vars: &[&str],
    ) -> Vec<Json> {
        let mut params = Vec::new();
        for field in input.fields() {
            if path_vars.contains(&field.name())
                || route.body.as_deref() == Some(field.name())
                || field.is_map()
                || matches!(field.kind(), Kind::Message(_))
            {
                continue;
            }
            let mut p = self.parameter_base(field.json_name(), &field, "query");
            p.insert("required".into(), json!(false));
            if field.is_list() {
                p.insert("type".into(), json!("array"));
                p.insert("items".into(), Json::Object(scalar_param_type(&field)));
                p.insert("collectionFormat".into(), json!("multi"));
            } else {
                p.extend(scalar_param_type(&field));
            }
            params.push(Json::Object(p));
        }
        params
    }

    /// The first keys of a parameter for `field`: `name`, `description` (the field's comment,
    /// if any) and `in` (`location`).
    fn parameter_base(
        &self,
        name: &str,
        field: &FieldDescriptor,
        location: &str,
    ) -> Map<String, Json> {
        let mut p = Map::new();
        p.insert("name".into(), json!(name));
        if let Some(d) = self.comment(&field.parent_file(), field.path()) {
            p.insert("description".into(), json!(d));
        }
        p.insert("in".into(), json!(location));
        p
    }

    fn add_definitions(&self, defs: &mut BTreeMap<String, Json>, mut queue: VecDeque<DefType>) {
        let mut done = BTreeSet::new();
        while let Some(ty) = queue.pop_front() {
            match ty {
                DefType::Message(msg) => {
                    let name = definition_name(msg.full_name(), msg.parent_message().is_some());
                    if !done.insert(name.clone()) {
                        continue;
                    }
                    let def = self.message_definition(&msg, &mut queue);
                    defs.insert(name, def);
                }
                DefType::Enum(en) => {
                    let name = definition_name(en.full_name(), en.parent_message().is_some());
                    if !done.insert(name.clone()) {
                        continue;
                    }
                    defs.insert(name, self.enum_definition(&en));
                }
            }
        }
    }

    fn message_definition(&self, msg: &MessageDescriptor, queue: &mut VecDeque<DefType>) -> Json {
        let mut props = Map::new();
        let mut required = Vec::new();
        for field in msg.fields() {
            let mut schema = match self.field_schema(&field, queue) {
                Json::Object(map) => map,
                _ => Map::new(),
            };
            if let Some(d) = self.comment(&field.parent_file(), field.path()) {
                schema.insert("description".into(), json!(d));
            }
            let behaviors = self.behaviors(&field);
            if behaviors.contains(&FIELD_BEHAVIOR_OUTPUT_ONLY) {
                schema.insert("readOnly".into(), json!(true));
            }
            if behaviors.contains(&FIELD_BEHAVIOR_REQUIRED) {
                required.push(json!(field.json_name()));
            }
            props.insert(field.json_name().to_owned(), Json::Object(schema));
        }
        let mut def = Map::new();
        def.insert("type".into(), json!("object"));
        def.insert("properties".into(), Json::Object(props));
        if let Some(d) = self.comment(&msg.parent_file(), msg.path()) {
            def.insert("description".into(), json!(d));
        }
        if !required.is_empty() {
            def.insert("required".into(), Json::Array(required));
        }
        Json::Object(def)
    }

    fn enum_definition(&self, en: &EnumDescriptor) -> Json {
        let names: Vec<Json> = en.values().map(|v| json!(v.name())).collect();
        let default = en.values().next().map(|v| v.name().to_owned());
        let mut def = Map::new();
        def.insert("type".into(), json!("string"));
        def.insert("enum".into(), Json::Array(names));
        if let Some(default) = default {
            def.insert("default".into(), json!(default));
        }
        let mut text = self
            .comment(&en.parent_file(), en.path())
            .unwrap_or_default();
        for value in en.values() {
            if let Some(c) = self.comment(&value.parent_file(), value.path()) {
                if !text.is_empty() {
                    text.push('\n');
                }
                let _ = write!(text, "\n - {}: {}", value.name(), c);
            }
        }
        let text = text.trim().to_owned();
        if !text.is_empty() {
            def.insert("description".into(), json!(text));
        }
        Json::Object(def)
    }

    /// Schema of a field's value (list/map aware).
    fn field_schema(&self, field: &FieldDescriptor, queue: &mut VecDeque<DefType>) -> Json {
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                unreachable!("map fields are messages");
            };
            let value = entry.map_entry_value_field();
            return json!({
                "type": "object",
                "additionalProperties": self.kind_schema(&value.kind(), queue),
            });
        }
        let single = self.kind_schema(&field.kind(), queue);
        if field.is_list() {
            json!({"type": "array", "items": single})
        } else {
            single
        }
    }

    fn message_schema(&self, msg: &MessageDescriptor, queue: &mut VecDeque<DefType>) -> Json {
        self.kind_schema(&Kind::Message(msg.clone()), queue)
    }

    fn kind_schema(&self, kind: &Kind, queue: &mut VecDeque<DefType>) -> Json {
        match kind {
            Kind::Message(msg) => match msg.full_name() {
                "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
                "google.protobuf.Empty" => json!({"type": "object", "properties": {}}),
                "google.protobuf.Any" => json!({"$ref": "#/definitions/protobufAny"}),
                full => {
                    let name = definition_name(full, msg.parent_message().is_some());
                    queue.push_back(DefType::Message(msg.clone()));
                    json!({ "$ref": format!("#/definitions/{name}") })
                }
            },
            Kind::Enum(en) => {
                let name = definition_name(en.full_name(), en.parent_message().is_some());
                queue.push_back(DefType::Enum(en.clone()));
                json!({ "$ref": format!("#/definitions/{name}") })
            }
            scalar => Json::Object(scalar_schema(scalar)),
        }
    }
}

/// Definition name as protoc-gen-openapiv2 derives it: top-level types are prefixed with their
/// package (dots removed), nested types with their enclosing message names only.
fn definition_name(full_name: &str, nested: bool) -> String {
    let parts: Vec<&str> = full_name.split('.').collect();
    if nested {
        // Drop the package: keep the last segments starting at the first upper-case one.
        let start = parts
            .iter()
            .position(|p| p.starts_with(|c: char| c.is_ascii_uppercase()))
            .unwrap_or(0);
        parts[start..].concat()
    } else {
        parts.concat()
    }
}

/// `type`/`format` of a scalar kind, following protoc-gen-openapiv2.
fn scalar_schema(kind: &Kind) -> Map<String, Json> {
    let (ty, format) = match kind {
        Kind::Double => ("number", Some("double")),
        Kind::Float => ("number", Some("float")),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => ("integer", Some("int32")),
        Kind::Uint32 | Kind::Fixed32 => ("integer", Some("int64")),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => ("string", Some("int64")),
        Kind::Uint64 | Kind::Fixed64 => ("string", Some("uint64")),
        Kind::Bool => ("boolean", None),
        Kind::String => ("string", None),
        Kind::Bytes => ("string", Some("byte")),
        Kind::Message(_) | Kind::Enum(_) => ("object", None),
    };
    let mut map = Map::new();
    map.insert("type".into(), json!(ty));
    if let Some(format) = format {
        map.insert("format".into(), json!(format));
    }
    map
}

/// Inline type of a non-body (path or query) parameter.
fn scalar_param_type(field: &FieldDescriptor) -> Map<String, Json> {
    match field.kind() {
        Kind::Enum(en) => {
            let mut map = Map::new();
            map.insert("type".into(), json!("string"));
            let names: Vec<Json> = en.values().map(|v| json!(v.name())).collect();
            if let Some(first) = names.first().cloned() {
                map.insert("default".into(), first);
            }
            map.insert("enum".into(), Json::Array(names));
            map
        }
        kind => scalar_schema(&kind),
    }
}

fn rpc_status_definition() -> Json {
    json!({
        "type": "object",
        "properties": {
            "code": {"type": "integer", "format": "int32"},
            "message": {"type": "string"},
            "details": {"type": "array", "items": {"$ref": "#/definitions/protobufAny"}},
        },
    })
}

fn any_definition() -> Json {
    json!({
        "type": "object",
        "properties": {
            "@type": {
                "type": "string",
                "description": "URL identifying the type of the embedded message; the message's own fields follow.",
            },
        },
        "additionalProperties": {},
        "description": "An arbitrary message, carried with the URL of its type.",
    })
}

fn clean_comment(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}
