//! Prefect's websockets (events in and out, log and task-run subscriptions) passed to
//! the upstream. A Prefect client authenticates a websocket with its first message,
//! `{"type": "auth", "token": ...}` (its `PREFECT_API_AUTH_STRING`, so `any:TOKEN`
//! carries a Blockyard token): that token is checked here and never passed on; the
//! upstream gets the same message with its own credentials. Then messages go both ways
//! as they come, until either side closes.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use rocket_ws::Message;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::guard::verify_with;
use crate::auth::Verifier;

/// Where a websocket goes and as whom: the upstream's `ws://` URL and its credentials.
pub struct Relay {
    pub url: url::Url,
    pub auth: Option<Zeroizing<String>>,
    pub verifier: Arc<Verifier>,
}

/// The Blockyard token in a Prefect auth message (`TOKEN`, or `user:TOKEN`).
fn token_of(message: &Message) -> Option<String> {
    let Message::Text(text) = message else {
        return None;
    };
    let parsed: Value = serde_json::from_str(text).ok()?;
    if parsed["type"] != "auth" {
        return None;
    }
    let token = parsed["token"].as_str()?;
    Some(token.split_once(':').map_or(token, |(_, t)| t).to_owned())
}

/// Checks the caller's first message, then relays. Errors end the connection.
pub async fn relay(
    mut client: rocket_ws::stream::DuplexStream,
    relay: Relay,
) -> rocket_ws::result::Result<()> {
    // Pings may come first (a client checks the connection before it authenticates).
    let first = loop {
        match client.next().await {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(message) => break message?,
            None => return Ok(()),
        }
    };
    let verified = match token_of(&first) {
        Some(token) => verify_with(&relay.verifier, &token).await.ok(),
        None => None,
    };
    if verified.is_none() {
        let reason =
            "send a Blockyard token as Prefect's auth string (PREFECT_API_AUTH_STRING=any:TOKEN)";
        let refusal = json!({"type": "auth_failure", "reason": reason}).to_string();
        client.send(Message::Text(refusal)).await?;
        return client.close(None).await;
    }
    // The "prefect" subprotocol asks the upstream for its auth handshake.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = relay.url.as_str().into_client_request()?;
    let protocol = tokio_tungstenite::tungstenite::http::HeaderValue::from_static("prefect");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol);
    let (mut upstream, _) = match tokio_tungstenite::connect_async(request).await {
        Ok(connected) => connected,
        Err(_) => return client.close(None).await,
    };
    let auth = json!({"type": "auth", "token": relay.auth.as_ref().map(|a| a.as_str())});
    upstream.send(Message::Text(auth.to_string())).await?;
    let (mut to_upstream, mut from_upstream) = upstream.split();
    let (mut to_client, mut from_client) = client.split();
    let up = async {
        while let Some(Ok(message)) = from_client.next().await {
            if to_upstream.send(message).await.is_err() {
                break;
            }
        }
        let _ = to_upstream.close().await;
    };
    let down = async {
        while let Some(Ok(message)) = from_upstream.next().await {
            if to_client.send(message).await.is_err() {
                break;
            }
        }
        let _ = to_client.close().await;
    };
    futures_util::future::select(Box::pin(up), Box::pin(down)).await;
    Ok(())
}
