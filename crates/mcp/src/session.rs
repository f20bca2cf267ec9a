//! One MCP Streamable HTTP session to the upstream, through the official SDK (`rmcp`): the
//! initialize handshake, `Mcp-Session-Id`, `MCP-Protocol-Version`, JSON or SSE answers and the
//! transparent re-initialize on a 404 all live in rmcp; this module adds the per-call timeout and
//! opens a fresh session when the old one is gone for good.

use std::sync::Arc;

use icp_contract::ProviderError;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientCapabilities, ClientConfig, ClientRequest,
    Implementation, JsonObject, ProtocolVersion,
};
use rmcp::service::{PeerRequestOptions, RoleClient, RunningService, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ServiceExt, service::ClientInitializeError};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::WattConfig;
use crate::payload;
use crate::stats::Counters;

type Client = RunningService<RoleClient, ClientConfig>;

pub(crate) struct McpSession {
    cfg: WattConfig,
    http: reqwest::Client,
    /// The live session and its generation; a failed session is replaced only once even when
    /// many calls notice it together.
    current: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    generation: u64,
    client: Option<Arc<Client>>,
}

impl McpSession {
    pub(crate) fn new(cfg: WattConfig, http: reqwest::Client) -> Self {
        Self {
            cfg,
            http,
            current: Mutex::new(Slot::default()),
        }
    }

    async fn client(&self, counters: &Counters) -> Result<(u64, Arc<Client>), ProviderError> {
        let mut slot = self.current.lock().await;
        if let Some(client) = slot.client.as_ref()
            && !client.is_closed()
        {
            return Ok((slot.generation, client.clone()));
        }
        slot.generation += 1;
        counters.session();
        let client = Arc::new(self.open().await?);
        slot.client = Some(client.clone());
        Ok((slot.generation, client))
    }

    async fn open(&self) -> Result<Client, ProviderError> {
        let transport_cfg = StreamableHttpClientTransportConfig::with_uri(self.cfg.url.as_str())
            .auth_header(self.cfg.api_key.expose())
            // Our own semaphore bounds calls; rmcp must not queue them a second time.
            .max_concurrent_requests(self.cfg.concurrency.saturating_mul(2).max(1))
            .max_json_response_size(self.cfg.max_response_bytes)
            .max_sse_event_size(self.cfg.max_response_bytes)
            .reinit_on_expired_session(true);
        let transport =
            StreamableHttpClientTransport::with_client(self.http.clone(), transport_cfg);
        let mut info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("icp-mcp", env!("CARGO_PKG_VERSION")),
        );
        // The upstream speaks the 2025-06-18 revision (initialize handshake, sessions); rmcp's
        // default is a later, initialize-less revision.
        info.protocol_version = ProtocolVersion::V_2025_06_18;
        match tokio::time::timeout(self.cfg.timeout, info.serve(transport)).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(init_error(e)),
            Err(_) => Err(ProviderError::unavailable(format!(
                "MCP initialize did not finish within {:?}",
                self.cfg.timeout
            ))),
        }
    }

    /// Opens the session now, so a wrong URL or key shows at start-up rather than mid-job.
    pub(crate) async fn ensure_open(&self, counters: &Counters) -> Result<(), ProviderError> {
        self.client(counters).await.map(|_| ())
    }

    /// One attempt at one tool call; retries are the caller's.
    pub(crate) async fn call_tool(
        &self,
        counters: &Counters,
        tool: &'static str,
        arguments: JsonObject,
    ) -> Result<Value, ProviderError> {
        let (generation, client) = self.client(counters).await?;
        let mut params = CallToolRequestParams::new(tool);
        params.arguments = Some(arguments);
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let mut options = PeerRequestOptions::no_options();
        options.timeout = Some(self.cfg.timeout);
        let answer = match client
            .peer()
            .send_request_with_option(request, options)
            .await
        {
            Ok(handle) => handle.await_response().await,
            Err(e) => Err(e),
        };
        match answer {
            Ok(result) => payload::unwrap_result(result),
            Err(e) => {
                if matches!(e, ServiceError::TransportClosed) {
                    self.discard(generation).await;
                }
                Err(payload::service_error(&e))
            }
        }
    }

    async fn discard(&self, generation: u64) {
        let mut slot = self.current.lock().await;
        if slot.generation == generation
            && let Some(client) = slot.client.take()
        {
            client.cancellation_token().cancel();
        }
    }
}

fn init_error(e: ClientInitializeError) -> ProviderError {
    if e.auth_challenge().is_some() {
        return ProviderError::Unauthorized {
            message: "the upstream refused the API key".into(),
        };
    }
    match &e {
        ClientInitializeError::TransportError { error, .. } => {
            payload::transport_error(error.error.as_ref())
        }
        ClientInitializeError::JsonRpcError(data) => payload::rpc_error(data),
        other => ProviderError::unavailable(format!("MCP initialize failed: {other}")),
    }
}
