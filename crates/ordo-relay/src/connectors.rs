//! The channel side of the relay: small capability traits (publish availability, confirm a
//! shipment, pass a refund on, send an EDI document), implemented by each channel for what it
//! supports, over HTTP. Every failure is mapped into the closed [`DeliveryError`] taxonomy the
//! retry policy acts on; formats come from `ordo-channels`.

use std::future::Future;

use ordo_channels::availability::AvailabilityUpdate;
use serde_json::{Value, json};

use crate::config::{ChannelDestination, Credentials};
use crate::delivery::DeliveryError;

pub trait InventoryPublisher {
    /// The most updates one call may carry.
    fn max_batch(&self) -> usize;
    /// Sets the channel's availability to `updates` (conditional on the previous figures where
    /// the channel supports it). Returns how many conditional writes found a concurrent change.
    fn publish_availability(
        &self,
        updates: &[AvailabilityUpdate],
        reference: &str,
    ) -> impl Future<Output = Result<u32, DeliveryError>> + Send;
}

pub trait FulfillmentPublisher {
    /// Confirms a shipment (a `shipment_confirmed` payload) with its carrier and tracking.
    fn confirm_shipment(&self, confirmation: &Value) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

pub trait RefundPublisher {
    /// Passes a refund (a `refund_issued` payload) on to the channel.
    fn pass_refund(&self, refund: &Value) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

/// What a channel's order API answered, for that channel's order mapper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderDocuments {
    /// `{"order": …}` documents.
    Shopify(Vec<String>),
    /// `getOrders` pages and `getOrderItems` pages.
    Amazon { orders: Vec<String>, items: Vec<String> },
}

pub trait OrderSource {
    /// Orders updated since `since` (ISO 8601), every page.
    fn orders_updated_since(&self, since: &str) -> impl Future<Output = Result<OrderDocuments, DeliveryError>> + Send;
}

pub trait DocumentPublisher {
    /// Sends an EDI document (an `edi_document` payload) to the partner.
    fn send_document(&self, document: &Value) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

/// An HTTP exchange: the answer's JSON on success, the taxonomy otherwise.
async fn exchange(request: reqwest::RequestBuilder) -> Result<Value, DeliveryError> {
    exchange_page(request).await.map(|(answer, _)| answer)
}

/// An exchange that may be one page of many: the answer's JSON and the `Link` header's
/// `rel="next"` URL, if any.
pub(crate) async fn exchange_page(request: reqwest::RequestBuilder) -> Result<(Value, Option<String>), DeliveryError> {
    let response = request.send().await.map_err(|e| DeliveryError::Transient(describe(&e)))?;
    let status = response.status().as_u16();
    let header = |name: reqwest::header::HeaderName| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    let retry_after = header(reqwest::header::RETRY_AFTER);
    let next = header(reqwest::header::LINK).as_deref().and_then(next_link);
    let body = response.text().await.map_err(|e| DeliveryError::Transient(describe(&e)))?;
    if !(200..300).contains(&status) {
        return Err(DeliveryError::from_status(status, retry_after.as_deref(), &body));
    }
    if body.trim().is_empty() {
        return Ok((Value::Null, next));
    }
    let answer = serde_json::from_str(&body)
        .map_err(|e| DeliveryError::Transient(format!("unreadable answer ({e}): {body:.200}")))?;
    Ok((answer, next))
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find(|part| part.contains("rel=\"next\"")).and_then(|part| {
        let start = part.find('<')? + 1;
        let end = part.find('>')?;
        Some(part[start..end].to_owned())
    })
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        e.to_string()
    }
}

/// The control number of an 846 the relay writes for `reference` (what it covers): the last
/// outbox row of the round plus 500 000 000, or a relay dead letter's id plus 900 000 000 when it
/// is redriven. Unique across rounds and restarts (a row ends one round only; a round read again
/// after a crash that reaches further is other content and gets another number), the same for a
/// retry of the same advice (a retransmission, which the partner recognises), and far above the
/// sequence the journal issues the partner's other documents from.
fn advice_control_number(reference: &str) -> u32 {
    let number = |text: &str| text.chars().take_while(char::is_ascii_digit).collect::<String>().parse::<u64>().ok();
    let (base, n) = if let Some(rest) = reference.strip_prefix("ordo://relay-dead-letter/") {
        (900_000_000, number(rest).map(|n| n % 100_000_000))
    } else {
        let last =
            reference.strip_prefix("ordo://outbox/").and_then(|range| range.split_once('-')).map(|(_, last)| last);
        (500_000_000, last.and_then(number).map(|n| n % 400_000_000))
    };
    (base + n.unwrap_or(0)) as u32
}

/// A channel connection of any kind; each implements the capabilities its channel has.
pub struct Connector {
    pub destination: ChannelDestination,
    client: reqwest::Client,
}

impl Connector {
    pub fn new(destination: ChannelDestination) -> Self {
        let client = reqwest::Client::builder()
            .timeout(destination.timeout)
            .connect_timeout(destination.timeout)
            .build()
            .expect("an HTTP client with a timeout");
        Self { destination, client }
    }

    /// The Feeds API (2021-06-30) in its three steps: a feed document is created, the feed is
    /// uploaded to the pre-signed URL it answers with (which carries its own authorization, never
    /// the SP-API token), and the feed is created over that document. Returns the feed id.
    async fn submit_amazon_feed(
        &self,
        feed_type: &str,
        marketplace_id: &str,
        feed: &Value,
    ) -> Result<String, DeliveryError> {
        const CONTENT_TYPE: &str = "application/json; charset=UTF-8";
        let document =
            exchange(self.post("/feeds/2021-06-30/documents").json(&json!({"contentType": CONTENT_TYPE}))).await?;
        let (Some(document_id), Some(upload)) = (document["feedDocumentId"].as_str(), document["url"].as_str()) else {
            return Err(DeliveryError::Rejected(format!(
                "createFeedDocument answered without feedDocumentId and url: {document}"
            )));
        };
        let put = self.client.put(upload).header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE).body(feed.to_string());
        exchange(put).await?;
        let created = exchange(self.post("/feeds/2021-06-30/feeds").json(&json!({
            "feedType": feed_type,
            "marketplaceIds": [marketplace_id],
            "inputFeedDocumentId": document_id,
        })))
        .await?;
        created["feedId"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| DeliveryError::Rejected(format!("createFeed answered without feedId: {created}")))
    }

    /// The partner's 846 for the changed SKUs: `QTY*33` under Ordo's SKU and the partner's item
    /// id (the configured channel item, when it differs).
    fn inventory_advice(
        &self,
        sender: &ordo_channels::x12::Party,
        partner: &ordo_channels::x12::Party,
        updates: &[AvailabilityUpdate],
        reference: &str,
    ) -> String {
        use ordo_channels::x12::outbound::{AvailabilityAdvice, inventory_advice_846};
        use ordo_channels::x12::write::{Envelope, Version, interchange};
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let at = ordo_types::Timestamp::from_millis(now.as_millis() as i64);
        let control_number = advice_control_number(reference);
        let items: Vec<AvailabilityAdvice> = updates
            .iter()
            .map(|u| AvailabilityAdvice {
                sku: u.sku.clone(),
                partner_item: (u.channel_item != u.sku).then(|| u.channel_item.clone()),
                available: u.available,
            })
            .collect();
        // BIA03 (the advice's reference) is at most 30 characters: the outbox range it covers.
        let reference: String = reference.trim_start_matches("ordo://").chars().take(30).collect();
        let envelope = Envelope {
            sender: sender.clone(),
            receiver: partner.clone(),
            control_number,
            at,
            usage: 'P',
            version: Version::v4010(),
        };
        // An 846's LIN loop repeats at most 10 000 times: more items, more sets.
        let sets: Vec<(&str, _)> =
            items.chunks(10_000).map(|chunk| ("846", inventory_advice_846(&reference, at, chunk))).collect();
        interchange(&envelope, "IB", &sets)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.destination.endpoint.trim_end_matches('/'))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.authorized(self.client.post(self.url(path)))
    }

    /// A GET of `path` under the endpoint, or of an absolute URL (a next page).
    pub(crate) fn get(&self, path_or_url: &str) -> reqwest::RequestBuilder {
        let url = if path_or_url.starts_with("http") { path_or_url.to_owned() } else { self.url(path_or_url) };
        self.authorized(self.client.get(url))
    }

    /// The channel's credentials on a request.
    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.destination.credentials {
            Credentials::Shopify { access_token, .. } => {
                request.header("X-Shopify-Access-Token", access_token.expose())
            }
            Credentials::Amazon { access_token, .. } => request.header("x-amz-access-token", access_token.expose()),
            Credentials::Walmart { access_token } => {
                // Every Marketplace API call names the service and carries its own correlation id.
                let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                request
                    .header("WM_SEC.ACCESS_TOKEN", access_token.expose())
                    .header("WM_SVC.NAME", "Walmart Marketplace")
                    .header("WM_QOS.CORRELATION_ID", format!("ordo-{}", nanos.as_nanos()))
                    .header(reqwest::header::ACCEPT, "application/json")
            }
            Credentials::Edi { token, .. } => request.bearer_auth(token.expose()),
        }
    }

    /// The channel's id for `sku` (its listing), or the SKU itself.
    pub fn channel_item(&self, sku: &str) -> String {
        self.destination.items.get(sku).cloned().unwrap_or_else(|| sku.to_owned())
    }

    const SHOPIFY_GRAPHQL: &'static str = "/admin/api/2025-10/graphql.json";

    async fn shopify_graphql(&self, body: &Value) -> Result<Value, DeliveryError> {
        let answer = exchange(self.post(Self::SHOPIFY_GRAPHQL).json(body)).await?;
        let throttled =
            answer["errors"].as_array().is_some_and(|e| e.iter().any(|e| e["extensions"]["code"] == "THROTTLED"));
        if throttled {
            return Err(DeliveryError::RateLimited { retry_after: std::time::Duration::from_secs(1) });
        }
        Ok(answer)
    }
}

impl InventoryPublisher for Connector {
    fn max_batch(&self) -> usize {
        match self.destination.credentials {
            Credentials::Shopify { .. } => ordo_channels::shopify::inventory::MAX_QUANTITIES,
            // One interchange per round, however many sets it takes (one control number).
            Credentials::Edi { .. } => usize::MAX,
            _ => 1_000,
        }
    }

    async fn publish_availability(
        &self,
        updates: &[AvailabilityUpdate],
        reference: &str,
    ) -> Result<u32, DeliveryError> {
        use ordo_channels::shopify::inventory::{SetQuantitiesAnswer, read_answer, set_quantities_request};
        match &self.destination.credentials {
            Credentials::Shopify { location_gid, .. } => {
                let body = set_quantities_request(location_gid, updates, true, reference);
                match read_answer(&self.shopify_graphql(&body).await?, updates) {
                    SetQuantitiesAnswer::Applied => Ok(0),
                    SetQuantitiesAnswer::Throttled => {
                        Err(DeliveryError::RateLimited { retry_after: std::time::Duration::from_secs(1) })
                    }
                    SetQuantitiesAnswer::Refused(m) => Err(DeliveryError::Rejected(m)),
                    SetQuantitiesAnswer::Stale(items) => {
                        // Someone changed these on Shopify since Ordo last published. Ordo is
                        // the system of record and the sale behind the change reaches it as an
                        // order, so its figure is set without the comparison.
                        let stale: Vec<AvailabilityUpdate> =
                            updates.iter().filter(|u| items.contains(&u.channel_item)).cloned().collect();
                        if stale.is_empty() {
                            return Err(DeliveryError::Rejected("stale compare for items Ordo did not send".into()));
                        }
                        let forced = set_quantities_request(location_gid, &stale, false, reference);
                        match read_answer(&self.shopify_graphql(&forced).await?, &stale) {
                            SetQuantitiesAnswer::Applied => {
                                // The others in the first call were refused with it: send them.
                                let rest: Vec<AvailabilityUpdate> =
                                    updates.iter().filter(|u| !items.contains(&u.channel_item)).cloned().collect();
                                if !rest.is_empty() {
                                    let body = set_quantities_request(location_gid, &rest, true, reference);
                                    if let SetQuantitiesAnswer::Refused(m) =
                                        read_answer(&self.shopify_graphql(&body).await?, &rest)
                                    {
                                        return Err(DeliveryError::Rejected(m));
                                    }
                                }
                                Ok(stale.len() as u32)
                            }
                            SetQuantitiesAnswer::Throttled => {
                                Err(DeliveryError::RateLimited { retry_after: std::time::Duration::from_secs(1) })
                            }
                            other => Err(DeliveryError::Rejected(format!("{other:?}"))),
                        }
                    }
                }
            }
            Credentials::Amazon { seller_id, product_type, marketplace_id, .. } => {
                let feed = ordo_channels::amazon::listings::listings_feed(seller_id, product_type, updates);
                self.submit_amazon_feed("JSON_LISTINGS_FEED", marketplace_id, &feed).await?;
                Ok(0)
            }
            Credentials::Walmart { .. } => {
                let feed = ordo_channels::walmart::inventory::inventory_feed(updates);
                exchange(self.post("/v3/feeds?feedType=inventory").json(&feed)).await?;
                Ok(0)
            }
            Credentials::Edi { sender, partner, .. } => {
                let text = self.inventory_advice(sender, partner, updates, reference);
                let request =
                    self.post("/documents").header(reqwest::header::CONTENT_TYPE, "application/edi-x12").body(text);
                exchange(request).await?;
                Ok(0)
            }
        }
    }
}

impl FulfillmentPublisher for Connector {
    async fn confirm_shipment(&self, c: &Value) -> Result<(), DeliveryError> {
        let order_id = c["channel_order_id"]
            .as_str()
            .ok_or_else(|| DeliveryError::Malformed("shipment confirmation without channel_order_id".into()))?;
        match &self.destination.credentials {
            Credentials::Shopify { .. } => {
                // The shipment is fulfilled against the order's open fulfillment order.
                let query = json!({
                    "query": "query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 10) { nodes { id status } } } }",
                    "variables": {"id": format!("gid://shopify/Order/{order_id}")},
                });
                let answer = self.shopify_graphql(&query).await?;
                let open = answer["data"]["order"]["fulfillmentOrders"]["nodes"]
                    .as_array()
                    .and_then(|nodes| {
                        nodes.iter().find(|n| matches!(n["status"].as_str(), Some("OPEN" | "IN_PROGRESS")))
                    })
                    .and_then(|n| n["id"].as_str())
                    .ok_or_else(|| DeliveryError::Rejected(format!("order {order_id} has no open fulfillment order")))?
                    .to_owned();
                let body = ordo_channels::shopify::fulfillment::fulfillment_create_request(&open, c, false);
                let errors = ordo_channels::shopify::fulfillment::user_errors(&self.shopify_graphql(&body).await?);
                if errors.is_empty() { Ok(()) } else { Err(DeliveryError::Rejected(errors.join("; "))) }
            }
            Credentials::Amazon { marketplace_id, .. } => {
                let items: Vec<Value> = c["lines"]
                    .as_array()
                    .map(|ls| {
                        ls.iter().map(|l| json!({"orderItemId": l["line_id"], "quantity": l["quantity"]})).collect()
                    })
                    .unwrap_or_default();
                let body = json!({
                    "marketplaceId": marketplace_id,
                    "packageDetail": {
                        "packageReferenceId": c["shipment_id"],
                        "carrierCode": c["carrier"],
                        "shippingMethod": c["service"],
                        "trackingNumber": c["tracking"],
                        "shipDate": ordo_types::Timestamp::from_millis(c["shipped_at"].as_i64().unwrap_or_default()).to_string(),
                        "orderItems": items,
                    }
                });
                exchange(self.post(&format!("/orders/v0/orders/{order_id}/shipmentConfirmation")).json(&body)).await?;
                Ok(())
            }
            Credentials::Walmart { .. } => {
                let lines: Vec<Value> = c["lines"]
                    .as_array()
                    .map(|ls| {
                        ls.iter()
                            .map(|l| {
                                json!({
                                    "lineNumber": l["line_id"],
                                    "orderLineStatuses": {"orderLineStatus": [{
                                        "status": "Shipped",
                                        "statusQuantity": {"unitOfMeasurement": "EACH", "amount": l["quantity"].to_string()},
                                        "trackingInfo": {
                                            "shipDateTime": c["shipped_at"],
                                            "carrierName": {"carrier": c["carrier"]},
                                            "methodCode": c["service"],
                                            "trackingNumber": c["tracking"],
                                        }
                                    }]}
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let body = json!({"orderShipment": {"orderLines": {"orderLine": lines}}});
                exchange(self.post(&format!("/v3/orders/{order_id}/shipping")).json(&body)).await?;
                Ok(())
            }
            // Partners get ship notices as 856 documents.
            Credentials::Edi { .. } => Ok(()),
        }
    }
}

impl RefundPublisher for Connector {
    async fn pass_refund(&self, r: &Value) -> Result<(), DeliveryError> {
        let order_id = r["channel_order_id"]
            .as_str()
            .ok_or_else(|| DeliveryError::Malformed("refund without channel_order_id".into()))?;
        match &self.destination.credentials {
            Credentials::Shopify { .. } => {
                let order_gid = format!("gid://shopify/Order/{order_id}");
                // Money goes back against the order's payment: its successful sale or capture
                // (gateway, transaction id, currency); without a transaction Shopify refunds items only.
                let query = json!({
                    "query": "query($id: ID!) { order(id: $id) { transactions(first: 50) { id gateway kind status amountSet { shopMoney { currencyCode } } } } }",
                    "variables": {"id": order_gid},
                });
                let answer = self.shopify_graphql(&query).await?;
                let parent = answer["data"]["order"]["transactions"]
                    .as_array()
                    .and_then(|ts| {
                        ts.iter().find(|t| {
                            matches!(t["kind"].as_str(), Some("SALE" | "CAPTURE")) && t["status"] == "SUCCESS"
                        })
                    })
                    .cloned()
                    .ok_or_else(|| {
                        DeliveryError::Rejected(format!(
                            "order {order_id} has no successful sale or capture to refund against"
                        ))
                    })?;
                let currency = parent["amountSet"]["shopMoney"]["currencyCode"]
                    .as_str()
                    .and_then(|c| ordo_types::CurrencyCode::new(c).ok())
                    .ok_or_else(|| DeliveryError::Rejected(format!("order {order_id}: the payment has no currency")))?;
                let amount_minor = r["amount_minor"]
                    .as_i64()
                    .filter(|a| *a >= 0)
                    .ok_or_else(|| DeliveryError::Malformed("refund without a non-negative amount_minor".into()))?;
                let lines: Vec<Value> = r["lines"]
                    .as_array()
                    .map(|ls| {
                        ls.iter()
                            .map(|l| {
                                json!({"lineItemId": format!("gid://shopify/LineItem/{}", l["line_id"].as_str().unwrap_or_default()),
                                       "quantity": l["units"], "restockType": "NO_RESTOCK"})
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let body = json!({
                    "query": "mutation refundCreate($input: RefundInput!) { refundCreate(input: $input) { refund { id } userErrors { field message } } }",
                    "variables": {"input": {
                        "orderId": order_gid,
                        "note": ordo_domain::returns::refund_note(r["rma_id"].as_str().unwrap_or_default()),
                        "notify": true,
                        "refundLineItems": lines,
                        "transactions": [{
                            "orderId": order_gid,
                            "parentId": parent["id"],
                            "gateway": parent["gateway"],
                            "kind": "REFUND",
                            "amount": ordo_types::format_decimal(amount_minor, currency.exponent()),
                        }],
                    }}
                });
                let answer = self.shopify_graphql(&body).await?;
                let errors: Vec<String> = answer["data"]["refundCreate"]["userErrors"]
                    .as_array()
                    .map(|e| e.iter().map(|e| e["message"].as_str().unwrap_or_default().to_owned()).collect())
                    .unwrap_or_default();
                if errors.is_empty() { Ok(()) } else { Err(DeliveryError::Rejected(errors.join("; "))) }
            }
            // Marketplaces refund through their own return flows; the settlement shows it.
            _ => Ok(()),
        }
    }
}

impl DocumentPublisher for Connector {
    async fn send_document(&self, d: &Value) -> Result<(), DeliveryError> {
        let text = d["text"].as_str().ok_or_else(|| DeliveryError::Malformed("EDI document without text".into()))?;
        match &self.destination.credentials {
            Credentials::Edi { .. } => {
                let request = self
                    .post("/documents")
                    .header(reqwest::header::CONTENT_TYPE, "application/edi-x12")
                    .header("X-Control-Number", d["control_number"].to_string())
                    .body(text.to_owned());
                exchange(request).await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl OrderSource for Connector {
    async fn orders_updated_since(&self, since: &str) -> Result<OrderDocuments, DeliveryError> {
        match &self.destination.credentials {
            Credentials::Shopify { .. } => {
                crate::poll::shopify_orders_updated_since(self, since).await.map(OrderDocuments::Shopify)
            }
            Credentials::Amazon { marketplace_id, .. } => {
                crate::poll::amazon_orders_updated_after(self, marketplace_id, since)
                    .await
                    .map(|(orders, items)| OrderDocuments::Amazon { orders, items })
            }
            _ => Err(DeliveryError::Malformed(format!(
                "{} has no order API Ordo polls (its orders arrive as files or interchanges)",
                self.destination.channel
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn advice_control_numbers_follow_the_outbox_and_stay_clear_of_the_journal() {
        assert_eq!(super::advice_control_number("ordo://outbox/42-97"), 500_000_097);
        assert_eq!(super::advice_control_number("ordo://outbox/400000042-400000050"), 500_000_050);
        assert_eq!(super::advice_control_number("ordo://relay-dead-letter/7"), 900_000_007);
    }

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
