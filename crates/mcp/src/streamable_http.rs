//! The names of the MCP Streamable HTTP transport that the client, the server and the fault
//! layer in front of it all use: the session header and the protocol revisions. Depends on
//! nothing else in the crate.

/// The header that carries the session id the server gave at `initialize`.
pub(crate) const SESSION_HEADER: &str = "mcp-session-id";

/// Protocol revisions spoken here, newest first: the client asks for the newest; the server
/// answers a client asking for another with the newest.
pub(crate) const PROTOCOL_VERSIONS: [&str; 3] = ["2025-06-18", "2025-03-26", "2024-11-05"];
