//! The gRPC codec of the services: prost's, except that
//! * a message that cannot be decoded is `INVALID_ARGUMENT` (the peer sent it) instead of tonic's
//!   `INTERNAL` (which tells a client the server failed and may be worth a retry);
//! * a message with more fields than [`set_max_fields`] allows is `RESOURCE_EXHAUSTED` before it
//!   is decoded. Decoded, every field of a message costs tens to hundreds of bytes (a map entry
//!   of two short strings is about 150), so a message of tiny map entries would take ten times
//!   its size in memory; one pass over the encoded bytes, guided by the messages' descriptors,
//!   counts the fields at every depth without allocating.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use prost::bytes::Buf;
use prost_reflect::{DescriptorPool, Kind, MessageDescriptor};
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// prost encoding and decoding of `T` (sent) and `U` (received).
#[derive(Debug, Clone)]
pub struct ProtoCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for ProtoCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> Codec for ProtoCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProtoDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProtoDecoder(self.0.decoder())
    }
}

/// prost's decoder with malformed messages reported as `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub struct ProtoDecoder<U>(ProstDecoder<U>);

impl<U: prost::Message + Default> Decoder for ProtoDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let limit = MAX_FIELDS.load(Ordering::Relaxed);
        if limit != usize::MAX
            && let Some(descriptor) = descriptor_of::<U>()
            && buf.chunk().len() == buf.remaining()
            && fields_exceed(&descriptor, buf.chunk(), limit)
        {
            return Err(Status::resource_exhausted(format!(
                "message has more than {limit} fields"
            )));
        }
        self.0.decode(buf).map_err(|status| {
            Status::invalid_argument(format!("malformed message: {}", status.message()))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// The most fields (at any depth, every occurrence counted) a received message may have;
/// unlimited until set.
static MAX_FIELDS: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Sets the most fields a received message may have (for every service using this codec).
pub fn set_max_fields(limit: usize) {
    MAX_FIELDS.store(limit, Ordering::Relaxed);
}

/// Nesting deeper than this is left to prost (which refuses messages nested over 100 deep).
const MAX_DEPTH: u32 = 100;

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET)
            .expect("the built-in descriptor set decodes")
    })
}

/// The descriptor of a generated message type of package `proto` (`crate::proto::X` is
/// `proto.X`); `None` for other types.
fn descriptor_of<U>() -> Option<MessageDescriptor> {
    let path = std::any::type_name::<U>();
    let name = path.strip_prefix("kuberay_api::proto::")?;
    pool().get_message_by_name(&format!("proto.{name}"))
}

/// Whether the encoded message `bytes` of type `descriptor` has more than `limit` fields. A
/// malformed encoding stops the count (prost's decoder then reports it).
pub fn fields_exceed(descriptor: &MessageDescriptor, bytes: &[u8], limit: usize) -> bool {
    let mut remaining = limit;
    count_fields(descriptor, bytes, &mut remaining, 0).is_err()
}

/// The budget is spent.
struct Exceeded;

fn count_fields(
    descriptor: &MessageDescriptor,
    mut bytes: &[u8],
    remaining: &mut usize,
    depth: u32,
) -> Result<(), Exceeded> {
    fn spend(remaining: &mut usize, n: usize) -> Result<(), Exceeded> {
        *remaining = remaining.checked_sub(n).ok_or(Exceeded)?;
        Ok(())
    }
    while !bytes.is_empty() {
        let Ok(key) = prost::encoding::decode_varint(&mut bytes) else {
            return Ok(());
        };
        spend(remaining, 1)?;
        let number = (key >> 3) as u32;
        match key & 7 {
            0 => {
                if prost::encoding::decode_varint(&mut bytes).is_err() {
                    return Ok(());
                }
            }
            1 | 5 => {
                let width = if key & 7 == 1 { 8 } else { 4 };
                if bytes.len() < width {
                    return Ok(());
                }
                bytes.advance(width);
            }
            2 => {
                let Ok(length) = prost::encoding::decode_varint(&mut bytes) else {
                    return Ok(());
                };
                let Some(value) = usize::try_from(length)
                    .ok()
                    .filter(|&length| length <= bytes.len())
                    .map(|length| &bytes[..length])
                else {
                    return Ok(());
                };
                bytes.advance(value.len());
                if let Some(field) = descriptor.get_field(number) {
                    match field.kind() {
                        Kind::Message(inner) if depth < MAX_DEPTH => {
                            count_fields(&inner, value, remaining, depth + 1)?;
                        }
                        Kind::Message(_) | Kind::String | Kind::Bytes => {}
                        // A packed run of numbers: at least one byte each.
                        _ => spend(remaining, value.len())?,
                    }
                }
            }
            // Groups and invalid wire types: prost refuses them.
            _ => return Ok(()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Cluster, ClusterSpec, CreateClusterRequest, HeadGroupSpec};
    use prost::Message;

    fn request(entries: usize) -> CreateClusterRequest {
        CreateClusterRequest {
            namespace: "ns".into(),
            cluster: Some(Cluster {
                name: "c".into(),
                cluster_spec: Some(ClusterSpec {
                    head_group_spec: Some(HeadGroupSpec {
                        ray_start_params: (0..entries)
                            .map(|i| (format!("k{i}"), "v".to_string()))
                            .collect(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn request_types_have_descriptors() {
        assert!(descriptor_of::<CreateClusterRequest>().is_some());
        assert!(descriptor_of::<crate::proto::SubmitRayJobRequest>().is_some());
        assert!(descriptor_of::<String>().is_none());
    }

    #[test]
    fn fields_are_counted_at_every_depth() {
        let descriptor = descriptor_of::<CreateClusterRequest>().unwrap();
        // namespace, cluster, name, cluster_spec, head_group_spec: 5; each map entry: 3.
        let bytes = request(10).encode_to_vec();
        assert!(!fields_exceed(&descriptor, &bytes, 35));
        assert!(fields_exceed(&descriptor, &bytes, 34));
    }

    #[test]
    fn malformed_messages_are_left_to_prost() {
        let descriptor = descriptor_of::<CreateClusterRequest>().unwrap();
        assert!(!fields_exceed(&descriptor, &[0xff, 0xff], 10));
        assert!(!fields_exceed(&descriptor, &[0x0a, 0x7f, 0x01], 10));
    }
}
