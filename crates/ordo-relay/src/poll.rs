//! Order polls: the channels' order APIs read for orders updated since a checkpoint. Shopify's
//! REST Orders API (`updated_at_min`, every status, pages through the `Link` header's
//! `rel="next"`) reconciles what webhooks never delivered; Amazon's Orders API is pull-only
//! (`getOrders` with `LastUpdatedAfter`, then `getOrderItems` per order, both paged by
//! `NextToken`). The caller keeps the checkpoint (the newest update taken in) and captures what
//! comes back; capture is idempotent, so an overlap only costs a lookup.

use serde_json::Value;

use crate::connectors::{Connector, exchange_page};
use crate::delivery::DeliveryError;

/// Shopify's page size limit.
pub const PAGE: usize = 250;

/// Every order updated at or after `since` (ISO 8601), oldest pages first, as the REST Order
/// resources (each one a `{"order": …}` document for the order mapper).
pub async fn shopify_orders_updated_since(connector: &Connector, since: &str) -> Result<Vec<String>, DeliveryError> {
    let mut url = format!("/admin/api/2025-10/orders.json?status=any&limit={PAGE}&updated_at_min={since}");
    let mut orders = Vec::new();
    loop {
        let (page, next) = exchange_page(connector.get(&url)).await?;
        let list = page["orders"]
            .as_array()
            .ok_or_else(|| DeliveryError::Malformed("orders page without an `orders` list".into()))?;
        orders.extend(list.iter().map(|o| serde_json::json!({"order": o}).to_string()));
        match next {
            Some(next) => url = next,
            None => return Ok(orders),
        }
    }
}

/// Every page of an Amazon answer paged by `payload.NextToken`, starting at `first` (`next` makes
/// the URL of a page from its token); `visit` sees each page.
async fn amazon_pages(
    connector: &Connector,
    first: String,
    next: impl Fn(&str) -> String,
    mut visit: impl FnMut(&Value) -> Result<(), DeliveryError>,
) -> Result<Vec<String>, DeliveryError> {
    let mut pages = Vec::new();
    let mut url = first;
    loop {
        let (page, _) = exchange_page(connector.get(&url)).await?;
        visit(&page)?;
        let token = page["payload"]["NextToken"].as_str().map(str::to_owned);
        pages.push(page.to_string());
        match token {
            Some(token) => url = next(&token),
            None => return Ok(pages),
        }
    }
}

/// Amazon orders updated after `since` (ISO 8601): the `getOrders` answers (every page) and the
/// `getOrderItems` answers of each order (every page), as texts for `amazon::orders::pair`.
pub async fn amazon_orders_updated_after(
    connector: &Connector,
    marketplace_id: &str,
    since: &str,
) -> Result<(Vec<String>, Vec<String>), DeliveryError> {
    let mut ids = Vec::new();
    let orders_pages = amazon_pages(
        connector,
        format!("/orders/v0/orders?MarketplaceIds={marketplace_id}&LastUpdatedAfter={since}"),
        |token| format!("/orders/v0/orders?MarketplaceIds={marketplace_id}&NextToken={token}"),
        |page| {
            let orders = page["payload"]["Orders"]
                .as_array()
                .ok_or_else(|| DeliveryError::Malformed("getOrders answer without payload.Orders".into()))?;
            ids.extend(orders.iter().filter_map(|o| o["AmazonOrderId"].as_str().map(str::to_owned)));
            Ok(())
        },
    )
    .await?;
    let mut items_pages = Vec::new();
    for id in ids {
        let path = format!("/orders/v0/orders/{id}/orderItems");
        let pages =
            amazon_pages(connector, path.clone(), |token| format!("{path}?NextToken={token}"), |_| Ok(())).await?;
        items_pages.extend(pages);
    }
    Ok((orders_pages, items_pages))
}
