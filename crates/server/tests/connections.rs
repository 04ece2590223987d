//! Connection deadlines and limits on both ports: slow and idle connections are closed, bodies
//! must arrive within the call deadline, the connection limit keeps `/healthz` answering, the
//! gRPC port advertises its stream limit and refuses oversized messages, and sockets have
//! TCP_NODELAY. Timeouts are set small so that each case takes about a second.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kuberay_api::proto::compute_template_service_client::ComputeTemplateServiceClient;
use kuberay_api::proto::{ComputeTemplate, CreateComputeTemplateRequest};
use support::{TestServer, http_client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;

fn address(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// Reads until the peer closes the connection; how long that took (`None`: still open after
/// `limit`).
async fn closed_within(
    stream: &mut (impl AsyncReadExt + Unpin),
    limit: Duration,
) -> Option<Duration> {
    let begin = Instant::now();
    let mut buffer = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_all)
        .await
        .ok()
        .map(|()| begin.elapsed())
}

/// Reads one HTTP/1 response head (the body of our answers here is small and comes with it).
async fn read_head(stream: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.unwrap();
        assert_eq!(
            n,
            1,
            "connection closed after {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Writes `prefix`, then one byte every 100 ms until the peer stops reading.
fn trickle(mut writer: tokio::net::tcp::OwnedWriteHalf, prefix: &'static [u8], byte: u8) {
    tokio::spawn(async move {
        if writer.write_all(prefix).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
        }
    });
}

#[tokio::test]
async fn slow_and_silent_connections_are_cut_within_the_header_timeout() {
    let server = TestServer::start_with(&["--http-header-read-timeout=1s"]).await;
    let http = address(&server.http);

    // Headers trickled at 10 bytes/s on a new connection.
    let (mut reader, writer) = TcpStream::connect(http).await.unwrap().into_split();
    trickle(writer, b"GET /healthz HTTP/1.1\r\nX-Slow: ", b'a');
    let took = closed_within(&mut reader, Duration::from_secs(4)).await;
    assert!(
        took.is_some_and(|t| t >= Duration::from_millis(900) && t < Duration::from_secs(2)),
        "trickled headers: {took:?}"
    );

    // The same on a kept-alive connection, after a first request.
    let stream = TcpStream::connect(http).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_head(&mut reader).await.starts_with("HTTP/1.1 200"));
    trickle(writer, b"GET /healthz HTTP/1.1\r\nX-Slow: ", b'a');
    let took = closed_within(&mut reader, Duration::from_secs(4)).await;
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(2)),
        "trickled headers after a request: {took:?}"
    );

    // A connection that sends nothing at all.
    let mut silent = TcpStream::connect(http).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(4)).await;
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(2)),
        "silent connection: {took:?}"
    );
    server.stop().await;
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const H2_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    // The header timeout stays at its default (30 s): the idle timeout closes these.
    let server = TestServer::start_with(&["--idle-timeout=1s"]).await;

    // HTTP/1.1 kept alive after a request.
    let mut stream = TcpStream::connect(address(&server.http)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let took = closed_within(&mut stream, Duration::from_secs(4)).await;
    assert!(
        took.is_some_and(|t| t >= Duration::from_millis(800) && t < Duration::from_secs(2)),
        "idle HTTP/1.1 connection: {took:?}"
    );

    // An HTTP/2 connection to the gRPC port without any stream (GOAWAY, then closed).
    let mut stream = TcpStream::connect(address(&server.grpc)).await.unwrap();
    stream.write_all(H2_PREFACE).await.unwrap();
    stream.write_all(H2_SETTINGS).await.unwrap();
    let took = closed_within(&mut stream, Duration::from_secs(4)).await;
    assert!(
        took.is_some_and(|t| t >= Duration::from_millis(800) && t < Duration::from_secs(3)),
        "idle gRPC connection: {took:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn slow_bodies_are_cut_within_the_call_deadline() {
    let server = TestServer::start_with(&["--grpc_timeout=1s"]).await;

    // V1 and V2 over HTTP: 408 with the gateway's error body.
    for path in [
        "/apis/v1/namespaces/default/compute_templates",
        "/apis/ray.io/v1/namespaces/default/rayclusters",
    ] {
        let (mut reader, writer) = TcpStream::connect(address(&server.http))
            .await
            .unwrap()
            .into_split();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
        );
        trickle(
            writer,
            Box::leak(head.into_bytes().into_boxed_slice()),
            b' ',
        );
        let begin = Instant::now();
        let head = tokio::time::timeout(Duration::from_secs(4), read_head(&mut reader))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer"));
        let took = begin.elapsed();
        assert!(head.starts_with("HTTP/1.1 408"), "{path}: {head}");
        assert!(
            head.to_ascii_lowercase().contains("connection: close"),
            "{head}"
        );
        assert!(took < Duration::from_secs(2), "{path}: {took:?}");
        let mut body = [0u8; 200];
        let n = reader.read(&mut body).await.unwrap();
        let body = String::from_utf8_lossy(&body[..n]);
        assert!(body.contains("\"code\":4"), "{body}");
    }

    // gRPC: a message whose bytes stop coming is DEADLINE_EXCEEDED.
    let stream = TcpStream::connect(address(&server.grpc)).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let body = StreamBody::new(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|data| (Ok::<_, Infallible>(Frame::data(data)), rx))
    })));
    let request = http::Request::post(format!(
        "{}/proto.ComputeTemplateService/GetComputeTemplate",
        server.grpc
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(body)
    .unwrap();
    // A message header announcing 100 bytes, then only 2 of them.
    tx.send(Bytes::from_static(&[0, 0, 0, 0, 100, 10, 1]))
        .await
        .unwrap();
    let begin = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(4), sender.send_request(request))
        .await
        .expect("no gRPC answer")
        .unwrap();
    let took = begin.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    let status = match response.headers().get("grpc-status") {
        Some(status) => status.to_str().unwrap().to_string(),
        None => {
            let collected = response.into_body().collect().await.unwrap();
            collected.trailers().unwrap()["grpc-status"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(status, "4");
    drop(tx);
    server.stop().await;
}

#[tokio::test]
async fn at_the_connection_limit_healthz_still_answers() {
    // 4 connections per port, plus 2 reserve connections.
    let server = TestServer::start_with(&["--max-connections=4"]).await;
    let http = address(&server.http);

    // Twenty idle connections: each newcomer pushes out the longest-idle one.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(http).await.unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let client = http_client();
    let begin = Instant::now();
    let response = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(begin.elapsed() < Duration::from_secs(1));
    let mut closed = 0;
    for stream in &mut idle {
        if closed_within(stream, Duration::from_millis(50))
            .await
            .is_some()
        {
            closed += 1;
        }
    }
    // At most 4 stay open, minus the one the probe took.
    assert!(
        closed >= 17,
        "only {closed} of 20 idle connections were closed"
    );
    drop(idle);
    drop(client);

    // Four connections busy with requests in progress (bodies still coming): a probe is
    // served on a reserve connection, which closes after its one request.
    let mut busy = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(http).await.unwrap();
        stream
            .write_all(b"POST /apis/v1/namespaces/default/compute_templates HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            .await
            .unwrap();
        busy.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut probe = TcpStream::connect(http).await.unwrap();
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = tokio::time::timeout(Duration::from_secs(2), read_head(&mut probe))
        .await
        .expect("the probe was not answered");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    assert!(
        closed_within(&mut probe, Duration::from_secs(1))
            .await
            .is_some()
    );
    // The busy connections were not touched.
    for stream in &mut busy {
        assert!(
            closed_within(stream, Duration::from_millis(20))
                .await
                .is_none()
        );
    }
    drop(busy);
    server.stop().await;
}

/// The settings of the first SETTINGS frame the server sends.
async fn server_settings(address: SocketAddr) -> Vec<(u16, u32)> {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(H2_PREFACE).await.unwrap();
    stream.write_all(H2_SETTINGS).await.unwrap();
    loop {
        let mut header = [0u8; 9];
        stream.read_exact(&mut header).await.unwrap();
        let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; length];
        stream.read_exact(&mut payload).await.unwrap();
        let (kind, flags) = (header[3], header[4]);
        if kind == 4 && flags & 1 == 0 {
            return payload
                .chunks_exact(6)
                .map(|s| {
                    (
                        u16::from_be_bytes([s[0], s[1]]),
                        u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
                    )
                })
                .collect();
        }
    }
}

#[tokio::test]
async fn http2_settings_advertise_max_concurrent_streams() {
    const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    let server = TestServer::start().await;
    for port in [&server.grpc, &server.http] {
        let settings = server_settings(address(port)).await;
        assert!(
            settings.contains(&(MAX_CONCURRENT_STREAMS, 250)),
            "{port}: {settings:?}"
        );
    }
    server.stop().await;

    let server = TestServer::start_with(&["--http2-max-concurrent-streams=7"]).await;
    let settings = server_settings(address(&server.grpc)).await;
    assert!(
        settings.contains(&(MAX_CONCURRENT_STREAMS, 7)),
        "{settings:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn grpc_messages_over_the_receive_limit_are_resource_exhausted() {
    let server = TestServer::start().await;
    let mut grpc = ComputeTemplateServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let request = |size: usize| CreateComputeTemplateRequest {
        compute_template: Some(ComputeTemplate {
            name: "t".into(),
            namespace: "default".into(),
            cpu: 1,
            memory: 1,
            gpu_accelerator: "x".repeat(size),
            ..Default::default()
        }),
        namespace: "default".into(),
    };
    // The default limit is grpc-go's 4 MiB.
    let status = grpc
        .create_compute_template(request(5 << 20))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("grpc: received message larger than max ("),
        "{}",
        status.message()
    );
    // Under the limit the call is served (here: refused for its content, not its size).
    let answer = grpc.create_compute_template(request(3 << 20)).await;
    assert!(
        answer
            .as_ref()
            .map_or_else(|s| s.code() != Code::ResourceExhausted, |_| true),
        "{answer:?}"
    );
    server.stop().await;

    let server = TestServer::start_with(&["--grpc-max-receive-bytes=1000"]).await;
    let mut grpc = ComputeTemplateServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let status = grpc
        .create_compute_template(request(2000))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    server.stop().await;
}

#[tokio::test]
async fn http2_peers_that_stop_answering_pings_are_dropped() {
    let server = TestServer::start_with(&[
        "--http2-keepalive-interval=300ms",
        "--http2-keepalive-timeout=300ms",
    ])
    .await;
    // A health watch keeps a request in progress, so only the keep-alive can end it.
    let mut connection = TcpStream::connect(address(&server.grpc)).await.unwrap();
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/grpc.health.v1.Health/Watch"),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        hpack_literal(&mut block, name, value);
    }
    let mut start = H2_PREFACE.to_vec();
    start.extend_from_slice(H2_SETTINGS);
    h2_frame(&mut start, 1, 0x4, 1, &block);
    h2_frame(&mut start, 0, 0x1, 1, &[0, 0, 0, 0, 0]);
    connection.write_all(&start).await.unwrap();
    // Read (and acknowledge settings) but never answer a PING.
    let begin = Instant::now();
    let mut pings = 0;
    let closed = tokio::time::timeout(Duration::from_secs(4), async {
        loop {
            let mut header = [0u8; 9];
            if connection.read_exact(&mut header).await.is_err() {
                return;
            }
            let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            let mut payload = vec![0u8; length];
            if connection.read_exact(&mut payload).await.is_err() {
                return;
            }
            match (header[3], header[4] & 1) {
                (4, 0) => {
                    let mut ack = Vec::new();
                    h2_frame(&mut ack, 4, 1, 0, &[]);
                    let _ = connection.write_all(&ack).await;
                }
                (6, 0) => pings += 1,
                _ => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection is still open after 4 s");
    assert!(pings >= 1);
    assert!(
        begin.elapsed() < Duration::from_secs(2),
        "{:?}",
        begin.elapsed()
    );
    server.stop().await;
}

/// HPACK: a header field as a literal without indexing, new name, no Huffman coding.
fn hpack_literal(block: &mut Vec<u8>, name: &str, value: &str) {
    block.push(0);
    for text in [name, value] {
        assert!(text.len() < 127);
        block.push(text.len() as u8);
        block.extend_from_slice(text.as_bytes());
    }
}

fn h2_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Reads frames until the answer on `stream` ends (a HEADERS frame with END_STREAM),
/// acknowledging the server's settings.
async fn read_answer(connection: &mut TcpStream, stream: u32) {
    loop {
        let mut header = [0u8; 9];
        connection.read_exact(&mut header).await.unwrap();
        let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; length];
        connection.read_exact(&mut payload).await.unwrap();
        let (kind, flags) = (header[3], header[4]);
        let id = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
        match kind {
            // SETTINGS: acknowledge.
            4 if flags & 1 == 0 => {
                let mut ack = Vec::new();
                h2_frame(&mut ack, 4, 1, 0, &[]);
                connection.write_all(&ack).await.unwrap();
            }
            // PING: answer.
            6 if flags & 1 == 0 => {
                let mut ack = Vec::new();
                h2_frame(&mut ack, 6, 1, 0, &payload);
                connection.write_all(&ack).await.unwrap();
            }
            // RST_STREAM, GOAWAY.
            3 | 7 => panic!("the server refused the call: frame type {kind}"),
            1 if id == stream && flags & 1 == 1 => return,
            _ => {}
        }
    }
}

/// Without TCP_NODELAY on the server's socket, the last small write of each answer waits for
/// the client's delayed ACK (40 ms on Linux). The client here writes each call in one segment and
/// never sets TCP_NODELAY itself, so only the server's setting shows (tonic's own client sends
/// a call in several writes and would wait for the server's delayed ACKs instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_grpc_calls_do_not_wait_for_delayed_acks() {
    let server = TestServer::start().await;
    let mut connection = TcpStream::connect(address(&server.grpc)).await.unwrap();
    connection.set_nodelay(false).unwrap();
    let mut start = H2_PREFACE.to_vec();
    start.extend_from_slice(H2_SETTINGS);
    connection.write_all(&start).await.unwrap();

    let mut times = Vec::new();
    for i in 0..60u32 {
        let stream = 2 * i + 1;
        let mut block = Vec::new();
        for (name, value) in [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/proto.ComputeTemplateService/GetComputeTemplate"),
            (":authority", "localhost"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ] {
            hpack_literal(&mut block, name, value);
        }
        // GetComputeTemplateRequest { name: "missing", namespace: "default" }.
        let message = [b"\x0a\x07missing".as_slice(), b"\x12\x07default"].concat();
        let mut data = vec![0];
        data.extend_from_slice(&(message.len() as u32).to_be_bytes());
        data.extend_from_slice(&message);
        let mut call = Vec::new();
        // A PING with each call, as grpc-go's flow-control (BDP) estimator sends them: the
        // server answers it at once, and its answer to the call follows as a second write.
        h2_frame(&mut call, 6, 0, 0, &u64::from(i).to_be_bytes());
        h2_frame(&mut call, 1, 0x4, stream, &block);
        h2_frame(&mut call, 0, 0x1, stream, &data);
        let begin = Instant::now();
        connection.write_all(&call).await.unwrap();
        read_answer(&mut connection, stream).await;
        if i >= 10 {
            times.push(begin.elapsed());
        }
    }
    times.sort();
    let p99 = times[times.len() * 99 / 100 - 1];
    let median = times[times.len() / 2];
    eprintln!("sequential gRPC calls, client without TCP_NODELAY: median {median:?}, p99 {p99:?}");
    // A delayed ACK stalls a call for about 40 ms; the median stays far below that with
    // TCP_NODELAY even on a loaded machine, where p99 is noise.
    assert!(
        median < Duration::from_millis(30),
        "median {median:?} (p99 {p99:?})"
    );
    drop(connection);
    server.stop().await;
}
