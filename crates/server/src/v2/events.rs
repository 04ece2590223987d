//! The event field-selector rule of the V2 API: only events about `ray.io/v1` objects.

/// The restriction that is always added.
pub const RAY_EVENTS: &str = "regarding.apiVersion=ray.io/v1";

/// Rewrites a query so that all its `fieldSelector` values plus [`RAY_EVENTS`] are joined with
/// `,` into one `fieldSelector` parameter; other parameters are kept in order.
pub fn restrict_query(query: Option<&str>) -> String {
    let mut selectors = Vec::new();
    let mut others = Vec::new();
    for pair in query.unwrap_or_default().split('&') {
        match form_urlencoded::parse(pair.as_bytes()).next() {
            Some((key, value)) if key == "fieldSelector" => selectors.push(value.into_owned()),
            Some(_) => others.push(pair.to_string()),
            None => {}
        }
    }
    selectors.push(RAY_EVENTS.to_string());
    others.push(format!(
        "fieldSelector={}",
        percent_encoding::utf8_percent_encode(&selectors.join(","), QUERY_VALUE)
    ));
    others.join("&")
}

/// What is escaped in a query value (like Go's `url.QueryEscape`, minus the space rule).
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(query: &str) -> String {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "fieldSelector")
            .unwrap()
            .1
            .into_owned()
    }

    #[test]
    fn the_restriction_is_always_added() {
        assert_eq!(selector(&restrict_query(None)), RAY_EVENTS);
        let query = restrict_query(Some(
            "limit=5&fieldSelector=regarding.name%3Dx&fieldSelector=type=Normal",
        ));
        assert!(query.starts_with("limit=5&"));
        assert_eq!(
            selector(&query),
            "regarding.name=x,type=Normal,regarding.apiVersion=ray.io/v1"
        );
        assert_eq!(query.matches("fieldSelector").count(), 1);
        assert_eq!(
            selector(&restrict_query(Some("fieldSelector=regarding.apiVersion="))),
            "regarding.apiVersion=,regarding.apiVersion=ray.io/v1"
        );
    }
}
