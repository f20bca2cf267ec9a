//! Cross-origin requests from the dashboards an operator names (`ICP_CORS_ORIGINS`). None are
//! allowed by default: a page served from anywhere else cannot call the service, nor read its
//! answers, until the operator says which origins may.
//!
//! An allowed origin gets its preflights answered (the methods and request headers the API
//! takes, cached by the browser for an hour) and may read the response headers a client needs
//! beyond the CORS-safelisted ones: `Location` of a created job, `Retry-After` of a 429 or 503,
//! the request id to quote in a bug report, `Content-Disposition` of an export. Error answers
//! carry the same headers, so a dashboard can show the problem instead of a network error.
//! Keys travel in `Authorization`, never in cookies, so credentials mode stays off.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Which origins may call the service from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No cross-origin access (the default).
    #[default]
    None,
    /// Any origin (`*`): for a service whose every route needs a key anyway.
    Any,
    /// These origins exactly, as a browser sends them (`https://dash.example.com:8443`).
    List(Vec<HeaderValue>),
}

impl CorsOrigins {
    /// Parses a comma-separated list of origins (`scheme://host[:port]`, no path), or `*`; an
    /// empty list allows none. Each origin is put in the form browsers send (lower case, no
    /// default port), so `https://Dash.Example.com:443/` matches what a browser sends.
    pub fn parse(list: &str) -> Result<Self, String> {
        let entries: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.is_empty() {
            return Ok(Self::None);
        }
        if entries.contains(&"*") {
            return if entries.len() == 1 {
                Ok(Self::Any)
            } else {
                Err("`*` allows every origin: give it alone, not in a list".to_owned())
            };
        }
        let mut origins: Vec<HeaderValue> = Vec::with_capacity(entries.len());
        for entry in entries {
            let origin = serialized_origin(entry)?;
            let value = HeaderValue::from_str(&origin).map_err(|e| format!("`{entry}`: {e}"))?;
            if !origins.contains(&value) {
                origins.push(value);
            }
        }
        Ok(Self::List(origins))
    }

    /// The layer that answers preflights and marks responses for these origins; `None` when no
    /// origin is allowed, so that the service answers exactly as it does without CORS.
    pub(crate) fn layer(&self) -> Option<CorsLayer> {
        let allow = match self {
            Self::None => return None,
            Self::Any => AllowOrigin::any(),
            Self::List(origins) => AllowOrigin::list(origins.iter().cloned()),
        };
        Some(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::CONTENT_ENCODING,
                    HeaderName::from_static("idempotency-key"),
                    HeaderName::from_static("x-request-id"),
                    HeaderName::from_static("last-event-id"),
                ])
                .expose_headers([
                    header::LOCATION,
                    header::RETRY_AFTER,
                    header::CONTENT_DISPOSITION,
                    HeaderName::from_static("x-request-id"),
                ])
                .max_age(Duration::from_secs(3600)),
        )
    }
}

/// `entry` as the `Origin` header a browser would send for it, or why it is not an origin.
fn serialized_origin(entry: &str) -> Result<String, String> {
    let url = url::Url::parse(entry).map_err(|e| format!("`{entry}` is not an origin: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{entry}`: an origin is http:// or https://"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{entry}`: an origin has no user or password"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`{entry}`: an origin is scheme://host[:port], without a path, query or fragment"
        ));
    }
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Ok(origin.ascii_serialization()),
        url::Origin::Opaque(_) => Err(format!("`{entry}` has no host")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> Vec<String> {
        match CorsOrigins::parse(s).unwrap() {
            CorsOrigins::List(v) => v.iter().map(|h| h.to_str().unwrap().to_owned()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn origins_take_the_form_browsers_send() {
        assert_eq!(
            list("https://Dash.Example.com:443/, http://localhost:5173,http://[::1]:80"),
            [
                "https://dash.example.com",
                "http://localhost:5173",
                "http://[::1]"
            ]
        );
        assert_eq!(list("http://a.test, http://a.test/"), ["http://a.test"]);
    }

    #[test]
    fn nothing_or_a_star() {
        assert_eq!(CorsOrigins::parse("").unwrap(), CorsOrigins::None);
        assert_eq!(CorsOrigins::parse(" , ").unwrap(), CorsOrigins::None);
        assert_eq!(CorsOrigins::parse("*").unwrap(), CorsOrigins::Any);
        assert!(CorsOrigins::parse("*, http://a.test").is_err());
        assert!(CorsOrigins::None.layer().is_none());
    }

    #[test]
    fn what_is_not_an_origin_is_refused_by_name() {
        for bad in [
            "dash.example.com",
            "ftp://a.test",
            "https://a.test/app",
            "https://a.test?x=1",
            "https://user@a.test",
            "https://a.test:99999",
            "file:///tmp",
        ] {
            let e = CorsOrigins::parse(bad).unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }
}
