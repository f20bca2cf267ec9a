//! A TCP proxy a test controls, put between the service and its Postgres: taken down, it
//! refuses new connections and cuts the ones it carries, as a stopped database server does;
//! brought back up, it forwards again on the same address. The machine's Postgres serves other
//! tests at the same time and is never stopped itself.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Mutex;
use tokio::task::{JoinHandle, JoinSet};

pub struct TcpProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    accepting: Mutex<Option<JoinHandle<()>>>,
    /// One task per connection carried, each copying both ways.
    links: Arc<Mutex<JoinSet<()>>>,
}

impl TcpProxy {
    /// A proxy on a free port of 127.0.0.1, forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = listen("127.0.0.1:0".parse().unwrap());
        let proxy = TcpProxy {
            addr: listener.local_addr().unwrap(),
            upstream,
            accepting: Mutex::new(None),
            links: Arc::default(),
        };
        proxy.serve(listener).await;
        proxy
    }

    /// `url` (a `postgres://` URL) pointed at the proxy instead of its host and port.
    pub fn url_through(&self, url: &str) -> String {
        let mut url = reqwest::Url::parse(url).expect("a database URL");
        url.set_ip_host(self.addr.ip()).unwrap();
        url.set_port(Some(self.addr.port())).unwrap();
        url.into()
    }

    /// The host and port a `postgres://` URL names.
    pub fn upstream_of(url: &str) -> SocketAddr {
        let url = reqwest::Url::parse(url).expect("a database URL");
        let host = url.host_str().expect("a host");
        let host = if host == "localhost" {
            "127.0.0.1"
        } else {
            host
        };
        format!("{host}:{}", url.port().unwrap_or(5432))
            .parse()
            .expect("an IP address and port")
    }

    /// Stops listening (connections are refused) and cuts every connection carried.
    pub async fn down(&self) {
        if let Some(accepting) = self.accepting.lock().await.take() {
            accepting.abort();
            let _ = accepting.await; // the listener is closed once the task is gone
        }
        self.links.lock().await.shutdown().await;
    }

    /// Listens again on the same address.
    pub async fn up(&self) {
        self.serve(listen(self.addr)).await;
    }

    async fn serve(&self, listener: TcpListener) {
        let (upstream, links) = (self.upstream, self.links.clone());
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                links.lock().await.spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let mut inbound = inbound;
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        *self.accepting.lock().await = Some(task);
    }
}

/// A listener on `addr`, which may have been closed a moment ago (hence `SO_REUSEADDR`).
fn listen(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket
        .bind(addr)
        .unwrap_or_else(|e| panic!("the proxy cannot listen on {addr}: {e}"));
    socket.listen(128).expect("listen")
}
