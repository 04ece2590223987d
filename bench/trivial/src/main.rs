//! A trivial server, the ceiling of the benchmark: every request gets the same small body, with no
//! routing, parsing or storage. HTTP/1.1 and HTTP/2 (prior knowledge) on one port; a request whose
//! content type is `application/grpc` gets a gRPC answer (a `proto.ComputeTemplate` message and
//! `grpc-status: 0`), any other one the JSON of that compute template.
//!
//! Usage: `kuberay-bench-trivial [ADDR]` (default `127.0.0.1:0`); prints `listening on ADDR`.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;

const JSON: &[u8] =
    br#"{"name":"t","namespace":"ray-system","cpu":1,"memory":1,"memoryUnit":"Gi"}"#;

/// `ComputeTemplate { name: "t", namespace: "ray-system", cpu: 1, memory: 1, memory_unit: "Gi" }`
/// in a gRPC frame (uncompressed flag, big-endian length, message).
fn grpc_frame() -> Bytes {
    let mut message = vec![0x0a, 1, b't', 0x12, 10];
    message.extend_from_slice(b"ray-system");
    message.extend_from_slice(&[0x18, 1, 0x20, 1, 0x4a, 2, b'G', b'i']);
    let mut frame = vec![0];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    Bytes::from(frame)
}

/// One data frame, then the trailers if any.
struct Fixed {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Body for Fixed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.data, &self.trailers) {
            (Some(data), None) => SizeHint::with_exact(data.len() as u64),
            (None, None) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let grpc = grpc_frame();
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let grpc = grpc.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let is_grpc = request
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
                let grpc = grpc.clone();
                async move {
                    // Read the request to its end (a gRPC client expects its stream consumed).
                    let _ = request.into_body().collect().await;
                    let response = if is_grpc {
                        let mut trailers = HeaderMap::new();
                        trailers.insert("grpc-status", HeaderValue::from_static("0"));
                        Response::builder()
                            .header(header::CONTENT_TYPE, "application/grpc")
                            .body(Fixed {
                                data: Some(grpc.clone()),
                                trailers: Some(trailers),
                            })
                    } else {
                        Response::builder()
                            .header(header::CONTENT_TYPE, "application/json")
                            .body(Fixed {
                                data: Some(Bytes::from_static(JSON)),
                                trailers: None,
                            })
                    };
                    Ok::<_, Infallible>(response.expect("a valid response"))
                }
            });
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
