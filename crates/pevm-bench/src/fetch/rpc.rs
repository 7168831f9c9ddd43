//! A blocking JSON-RPC client over HTTP(S): one request or a batch, a timeout per request, and
//! retries with exponential backoff on transient failures.

use std::{
    io::Read,
    sync::atomic::{AtomicU64, Ordering},
    thread,
    time::Duration,
};

use serde_json::{json, Value};

/// How the client talks to the node.
#[derive(Clone, Copy, Debug)]
pub struct ClientConfig {
    /// The longest one request may take, from connecting to the last byte of the response.
    pub timeout: Duration,
    /// Attempts after the first one for a transient failure (connection, timeout, HTTP 429/5xx).
    pub retries: u32,
    /// The wait before the first retry; it doubles with each further one.
    pub backoff: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            retries: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// A failed JSON-RPC call: the method, and what went wrong.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{method}: {kind}")]
pub struct RpcError {
    /// The method called (for a batch, its methods joined with `+`).
    pub method: String,
    /// What went wrong.
    pub kind: RpcErrorKind,
}

/// What went wrong with a JSON-RPC call.
#[derive(Clone, Debug, thiserror::Error)]
pub enum RpcErrorKind {
    /// The connection could not be made or broke.
    #[error("request failed: {0}")]
    Transport(String),
    /// No complete response within the configured timeout.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The server answered with an HTTP error status.
    #[error("HTTP {status}: {body}")]
    Http {
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The response is not a JSON-RPC response.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The node answered with a JSON-RPC error.
    #[error("node error {code}: {message}")]
    Node {
        /// The JSON-RPC error code.
        code: i64,
        /// The node's message.
        message: String,
    },
}

impl RpcErrorKind {
    /// Whether trying again may succeed.
    fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) | Self::Timeout(_) => true,
            Self::Http { status, .. } => *status == 429 || *status >= 500,
            Self::Malformed(_) | Self::Node { .. } => false,
        }
    }
}

impl RpcError {
    /// Whether the node does not offer the method (such as a node without the debug namespace).
    pub fn is_method_missing(&self) -> bool {
        let RpcErrorKind::Node { code, message } = &self.kind else {
            return false;
        };
        let message = message.to_lowercase();
        *code == -32601
            || (message.contains("method")
                && [
                    "not found",
                    "does not exist",
                    "not available",
                    "not supported",
                ]
                .iter()
                .any(|m| message.contains(m)))
    }

    /// Whether the node no longer has (or never had) the state asked for: a pruned node.
    pub fn is_state_missing(&self) -> bool {
        let RpcErrorKind::Node { message, .. } = &self.kind else {
            return false;
        };
        let message = message.to_lowercase();
        [
            "missing trie node",
            "header not found",
            "historical state",
            "pruned",
        ]
        .iter()
        .any(|m| message.contains(m))
    }
}

/// A JSON-RPC client for one node.
#[derive(Debug)]
pub struct RpcClient {
    url: String,
    agent: ureq::Agent,
    config: ClientConfig,
    next_id: AtomicU64,
}

impl RpcClient {
    /// A client for the node at `url`.
    pub fn new(url: &str, config: ClientConfig) -> Self {
        let agent = ureq::AgentBuilder::new().timeout(config.timeout).build();
        Self {
            url: url.to_string(),
            agent,
            config,
            next_id: AtomicU64::new(1),
        }
    }

    /// Calls `method` with `params` and returns its result (which may be `null`).
    pub fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self.post(method, &request)?;
        result(method, response)
    }

    /// Calls several methods in one batch request and returns their results in order.
    pub fn batch(&self, calls: &[(&str, Value)]) -> Result<Vec<Value>, RpcError> {
        let first_id = self
            .next_id
            .fetch_add(calls.len() as u64, Ordering::Relaxed);
        let request: Vec<Value> = calls
            .iter()
            .zip(first_id..)
            .map(|((method, params), id)| {
                json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
            })
            .collect();
        let label = calls.iter().map(|c| c.0).collect::<Vec<_>>().join("+");
        let response = self.post(&label, &Value::Array(request))?;
        let Value::Array(mut responses) = response else {
            return Err(malformed(
                &label,
                "a batch answered with something else than an array",
            ));
        };
        calls
            .iter()
            .zip(first_id..)
            .map(|((method, _), id)| {
                let position = responses
                    .iter()
                    .position(|r| r.get("id").and_then(Value::as_u64) == Some(id))
                    .ok_or_else(|| malformed(method, format!("no response with id {id}")))?;
                result(method, responses.swap_remove(position))
            })
            .collect()
    }

    /// Posts `request`, retrying transient failures, and parses the JSON response.
    fn post(&self, method: &str, request: &Value) -> Result<Value, RpcError> {
        let body = request.to_string();
        let mut delay = self.config.backoff;
        let mut attempt = 0;
        loop {
            match self.post_once(&body) {
                Err(kind) if kind.is_transient() && attempt < self.config.retries => {
                    thread::sleep(delay);
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
                outcome => {
                    return outcome.map_err(|kind| RpcError {
                        method: method.to_string(),
                        kind,
                    })
                }
            }
        }
    }

    fn post_once(&self, body: &str) -> Result<Value, RpcErrorKind> {
        let response = match self
            .agent
            .post(&self.url)
            .set("Content-Type", "application/json")
            .send_string(body)
        {
            Ok(response) => response,
            Err(ureq::Error::Status(status, response)) => {
                let body = response.into_string().unwrap_or_default();
                return Err(RpcErrorKind::Http {
                    status,
                    body: one_line(&body),
                });
            }
            Err(ureq::Error::Transport(error)) => return Err(self.transport(&error.to_string())),
        };
        let mut bytes = Vec::new();
        response
            .into_reader()
            .read_to_end(&mut bytes)
            .map_err(|e| self.transport(&e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            let start = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
            RpcErrorKind::Malformed(format!("not JSON ({e}): {}", one_line(&start)))
        })
    }

    /// A transport failure, told apart as a timeout when it is one.
    fn transport(&self, message: &str) -> RpcErrorKind {
        let lower = message.to_lowercase();
        if lower.contains("timed out") || lower.contains("timeout") {
            RpcErrorKind::Timeout(self.config.timeout)
        } else {
            RpcErrorKind::Transport(one_line(message))
        }
    }
}

/// The `result` of a JSON-RPC response, or its `error`.
fn result(method: &str, mut response: Value) -> Result<Value, RpcError> {
    if let Some(error) = response.get("error").filter(|e| !e.is_null()) {
        let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
        let message = match error.get("message").and_then(Value::as_str) {
            Some(message) => message.to_string(),
            None => error.to_string(),
        };
        return Err(RpcError {
            method: method.to_string(),
            kind: RpcErrorKind::Node {
                code,
                message: one_line(&message),
            },
        });
    }
    match response.get_mut("result") {
        Some(result) => Ok(result.take()),
        None => Err(malformed(method, "neither a result nor an error")),
    }
}

fn malformed(method: &str, message: impl Into<String>) -> RpcError {
    RpcError {
        method: method.to_string(),
        kind: RpcErrorKind::Malformed(message.into()),
    }
}

/// `text` on one line, cut to 200 characters.
fn one_line(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        Some((end, _)) => format!("{}...", &line[..end]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_error(code: i64, message: &str) -> RpcError {
        RpcError {
            method: "debug_traceBlockByNumber".into(),
            kind: RpcErrorKind::Node {
                code,
                message: message.into(),
            },
        }
    }

    #[test]
    fn node_errors_are_told_apart() {
        let missing = node_error(-32601, "the method x does not exist/is not available");
        assert!(missing.is_method_missing() && !missing.is_state_missing());
        let unsupported = node_error(-32000, "Method not supported");
        assert!(unsupported.is_method_missing());
        let pruned = node_error(-32000, "missing trie node 1f (path ) <nil>");
        assert!(pruned.is_state_missing() && !pruned.is_method_missing());
        assert!(node_error(-32000, "header not found").is_state_missing());
        assert!(!node_error(-32000, "execution reverted").is_state_missing());
    }

    #[test]
    fn only_transient_failures_are_retried() {
        let http = |status| RpcErrorKind::Http {
            status,
            body: String::new(),
        };
        assert!(http(429).is_transient() && http(503).is_transient());
        assert!(!http(404).is_transient());
        assert!(RpcErrorKind::Timeout(Duration::from_secs(1)).is_transient());
        assert!(!RpcErrorKind::Malformed(String::new()).is_transient());
    }
}
