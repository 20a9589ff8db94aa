//! Order polls: the channels' order APIs read for orders updated since a checkpoint. Shopify's
//! REST Orders API (`updated_at_min`, every status, pages through the `Link` header's
//! `rel="next"`) reconciles what webhooks never delivered; Amazon's Orders API is pull-only
//! (`getOrders` with `LastUpdatedAfter`, then `getOrderItems` per order, both paged by
//! `NextToken`). The caller keeps the checkpoint (the newest update taken in) and captures what
//! comes back; capture is idempotent, so an overlap only costs a lookup.

use serde_json::Value;

use crate::config::{ChannelDestination, Credentials};
use crate::delivery::DeliveryError;

/// Shopify's page size limit.
pub const PAGE: usize = 250;

/// The `rel="next"` URL of a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find(|part| part.contains("rel=\"next\"")).and_then(|part| {
        let start = part.find('<')? + 1;
        let end = part.find('>')?;
        Some(part[start..end].to_owned())
    })
}

/// Every order updated at or after `since` (ISO 8601), oldest pages first, as the REST Order
/// resources (each one a `{"order": …}` document for the order mapper).
pub async fn shopify_orders_updated_since(
    destination: &ChannelDestination,
    since: &str,
) -> Result<Vec<String>, DeliveryError> {
    let Credentials::Shopify { access_token, .. } = &destination.credentials else {
        return Err(DeliveryError::Malformed(format!("{} is not a Shopify channel", destination.channel)));
    };
    let client = reqwest::Client::builder()
        .timeout(destination.timeout)
        .build()
        .map_err(|e| DeliveryError::Malformed(e.to_string()))?;
    let base = destination.endpoint.trim_end_matches('/');
    let mut url = format!("{base}/admin/api/2025-10/orders.json?status=any&limit={PAGE}&updated_at_min={since}");
    let mut orders = Vec::new();
    loop {
        let response = client
            .get(&url)
            .header("X-Shopify-Access-Token", access_token.expose())
            .send()
            .await
            .map_err(|e| DeliveryError::Transient(e.to_string()))?;
        let status = response.status().as_u16();
        let retry_after = response.headers().get("Retry-After").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let link = response.headers().get("Link").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.text().await.map_err(|e| DeliveryError::Transient(e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(DeliveryError::from_status(status, retry_after.as_deref(), &body));
        }
        let page: Value = serde_json::from_str(&body)
            .map_err(|e| DeliveryError::Malformed(format!("orders page is not JSON: {e}")))?;
        let list = page["orders"]
            .as_array()
            .ok_or_else(|| DeliveryError::Malformed("orders page without an `orders` list".into()))?;
        orders.extend(list.iter().map(|o| serde_json::json!({"order": o}).to_string()));
        match link.as_deref().and_then(next_link) {
            Some(next) => url = next,
            None => return Ok(orders),
        }
    }
}

async fn get_json(client: &reqwest::Client, url: &str, header: (&str, &str)) -> Result<Value, DeliveryError> {
    let response =
        client.get(url).header(header.0, header.1).send().await.map_err(|e| DeliveryError::Transient(e.to_string()))?;
    let status = response.status().as_u16();
    let retry_after = response.headers().get("Retry-After").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.text().await.map_err(|e| DeliveryError::Transient(e.to_string()))?;
    if !(200..300).contains(&status) {
        return Err(DeliveryError::from_status(status, retry_after.as_deref(), &body));
    }
    serde_json::from_str(&body).map_err(|e| DeliveryError::Malformed(format!("answer is not JSON: {e}")))
}

/// Amazon orders updated after `since` (ISO 8601): the `getOrders` answers (every page) and the
/// `getOrderItems` answers of each order (every page), as texts for `amazon::orders::pair`.
pub async fn amazon_orders_updated_after(
    destination: &ChannelDestination,
    since: &str,
) -> Result<(Vec<String>, Vec<String>), DeliveryError> {
    let Credentials::Amazon { access_token, marketplace_id, .. } = &destination.credentials else {
        return Err(DeliveryError::Malformed(format!("{} is not an Amazon channel", destination.channel)));
    };
    let client = reqwest::Client::builder()
        .timeout(destination.timeout)
        .build()
        .map_err(|e| DeliveryError::Malformed(e.to_string()))?;
    let base = destination.endpoint.trim_end_matches('/');
    let header = ("x-amz-access-token", access_token.expose());
    let mut orders_pages = Vec::new();
    let mut ids = Vec::new();
    let mut url = format!("{base}/orders/v0/orders?MarketplaceIds={marketplace_id}&LastUpdatedAfter={since}");
    loop {
        let page = get_json(&client, &url, header).await?;
        ids.extend(
            page["payload"]["Orders"]
                .as_array()
                .ok_or_else(|| DeliveryError::Malformed("getOrders answer without payload.Orders".into()))?
                .iter()
                .filter_map(|o| o["AmazonOrderId"].as_str().map(str::to_owned)),
        );
        let next = page["payload"]["NextToken"].as_str().map(str::to_owned);
        orders_pages.push(page.to_string());
        match next {
            Some(token) => url = format!("{base}/orders/v0/orders?MarketplaceIds={marketplace_id}&NextToken={token}"),
            None => break,
        }
    }
    let mut items_pages = Vec::new();
    for id in ids {
        let mut url = format!("{base}/orders/v0/orders/{id}/orderItems");
        loop {
            let page = get_json(&client, &url, header).await?;
            let next = page["payload"]["NextToken"].as_str().map(str::to_owned);
            items_pages.push(page.to_string());
            match next {
                Some(token) => url = format!("{base}/orders/v0/orders/{id}/orderItems?NextToken={token}"),
                None => break,
            }
        }
    }
    Ok((orders_pages, items_pages))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        let link = r#"<https://shop.example/admin/api/2025-10/orders.json?limit=250&page_info=abc>; rel="previous", <https://shop.example/admin/api/2025-10/orders.json?limit=250&page_info=def>; rel="next""#;
        assert_eq!(
            super::next_link(link).as_deref(),
            Some("https://shop.example/admin/api/2025-10/orders.json?limit=250&page_info=def")
        );
        assert_eq!(super::next_link(r#"<https://x/y>; rel="previous""#), None);
    }
}
