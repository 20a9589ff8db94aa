//! The demo's day of orders: order settings for the demo retailer (listings, prices, shipping
//! methods, tax, node cut-offs and costs, a customer on credit hold) and a few hundred orders
//! across its channels — most flow straight to reservation, some are held (unpaid, fraud review,
//! unknown listing, credit hold), some split, some backorder, some are cancelled.

use ordo_domain::Command;
use ordo_domain::catalog::GeoPoint;
use ordo_domain::orders::book::{NodeSettings, OrderCommand, OrderSetting};
use ordo_domain::orders::lifecycle::Actor;
use ordo_domain::orders::model::{
    AccountStatus, Customer, FraudAssessment, FraudRecommendation, FulfillmentIntent, LineItem, Order, OrderLine,
    PaymentStatus, PostalAddress, ServiceLevel, Shipping, TaxLine,
};
use ordo_domain::orders::validation::ValidationRules;
use ordo_types::{Code, CurrencyCode, Sku, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn code(s: &str) -> Code {
    Code::new(s).expect("demo codes are valid")
}

/// List price of one each, by SKU family, in cents.
fn price_of(sku: &str) -> i64 {
    match sku.split('-').next().unwrap_or("") {
        "TEE" | "TANK" => 2_400,
        "LONGSLEEVE" | "POLO" => 3_400,
        "HOODIE" | "CREW" => 5_800,
        "JOGGER" | "SHORT" => 4_200,
        "JACKET" | "VEST" => 8_900,
        _ => 1_500,
    }
}

pub fn settings(skus: &[Sku]) -> Vec<Command> {
    let usd = CurrencyCode::new("USD").expect("valid");
    let mut out = Vec::new();
    let set = |s: OrderSetting| Command::Order(OrderCommand::Configure(s));
    for channel in ["SHOPIFY-DTC", "AMAZON-US", "WALMART", "B2B-EDI", "POS-NYC"] {
        let methods = ["standard", "expedited", "next_day", "pickup"].map(str::to_owned).into();
        out.push(set(OrderSetting::ShippingMethods { channel: code(channel), methods }));
        for sku in skus {
            out.push(set(OrderSetting::Price {
                channel: code(channel),
                sku: sku.clone(),
                currency: usd,
                unit_price_minor: price_of(sku.as_str()),
            }));
        }
    }
    // Amazon sends ASINs: map a few of them.
    for (i, sku) in skus.iter().enumerate().take(40) {
        out.push(set(OrderSetting::Listing {
            channel: code("AMAZON-US"),
            listing: format!("B0DEMO{i:04}"),
            sku: sku.clone(),
        }));
    }
    out.push(set(OrderSetting::Taxable { country: "US".into(), region: String::new(), taxable: true }));
    out.push(set(OrderSetting::Taxable { country: "US".into(), region: "OR".into(), taxable: false }));
    out.push(set(OrderSetting::Customer {
        channel: code("B2B-EDI"),
        customer_id: "ACME-STORES".into(),
        status: AccountStatus::CreditHold,
    }));
    for (node, cutoff, capacity, per_unit) in [
        ("WH-EAST", (16, 0), 400, 20),
        ("WH-WEST", (15, 0), 300, 20),
        ("STORE-NYC", (18, 0), 40, 90),
        ("3PL-TX", (14, 0), 250, 45),
    ] {
        out.push(set(OrderSetting::Node {
            location: code(node),
            settings: NodeSettings {
                cutoff_local: cutoff,
                daily_capacity: capacity,
                cost_per_shipment_minor: 250,
                cost_per_unit_minor: per_unit,
            },
        }));
    }
    // The demo lets channels sell into backorder rather than hold for a person.
    let mut rules = ValidationRules::default();
    rules.enabled.remove(&ordo_domain::orders::lifecycle::HoldCode::StockDiscrepancy);
    out.push(set(OrderSetting::Rules(rules)));
    out
}

const CITIES: [(&str, &str, &str, i32, i32); 6] = [
    ("Brooklyn", "NY", "11201", 40_693_000, -73_990_000),
    ("Boston", "MA", "02108", 42_358_000, -71_060_000),
    ("Chicago", "IL", "60601", 41_886_000, -87_623_000),
    ("Austin", "TX", "78701", 30_271_000, -97_743_000),
    ("Portland", "OR", "97204", 45_518_000, -122_679_000),
    ("San Jose", "CA", "95113", 37_335_000, -121_893_000),
];

/// `count` orders placed over the day before `now`, deterministic for a seed.
pub fn day_of_orders(skus: &[Sku], now: Timestamp, count: usize, seed: u64) -> Vec<Command> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count + 10);
    let channels = ["SHOPIFY-DTC", "SHOPIFY-DTC", "AMAZON-US", "AMAZON-US", "WALMART", "B2B-EDI"];
    for n in 0..count {
        let channel = channels[n % channels.len()];
        let (city, region, zip, lat, lon) = CITIES[rng.random_range(0..CITIES.len())];
        let lines: Vec<OrderLine> = (0..rng.random_range(1..=3))
            .map(|i| {
                let sku_index = rng.random_range(0..skus.len());
                let sku = skus[sku_index].clone();
                let quantity = if channel == "B2B-EDI" { rng.random_range(6..=24) } else { rng.random_range(1..=2) };
                let unit_price_minor = price_of(sku.as_str());
                let net = unit_price_minor * quantity;
                let item = if channel == "AMAZON-US" && sku_index < 40 {
                    LineItem::Listing(format!("B0DEMO{sku_index:04}"))
                } else {
                    LineItem::Sku(sku)
                };
                let tax_lines = if region == "OR" {
                    vec![]
                } else {
                    vec![TaxLine {
                        jurisdiction: format!("US-{region}"),
                        rate_bp: 700,
                        amount_minor: net * 7 / 100,
                        channel_collected: channel == "AMAZON-US" || channel == "WALMART",
                    }]
                };
                OrderLine {
                    line_id: (i + 1).to_string(),
                    item,
                    quantity,
                    uom: "each".into(),
                    unit_price_minor,
                    discount_minor: 0,
                    tax_lines,
                }
            })
            .collect();
        let mut order = Order {
            channel: code(channel),
            channel_order_id: format!("{}-{}", &channel[..3], 100_000 + n),
            channel_updated_at: Timestamp::from_millis(now.millis() - 86_400_000 + n as i64 * 60_000),
            placed_at: Timestamp::from_millis(now.millis() - 86_400_000 + n as i64 * 60_000),
            customer: Customer {
                id: format!("C-{}", rng.random_range(1..500)),
                name: format!("Customer {n}"),
                email: None,
                account_status: AccountStatus::Active,
            },
            ship_to: PostalAddress {
                name: format!("Customer {n}"),
                line1: format!("{} Main St", 1 + n % 900),
                line2: String::new(),
                city: city.into(),
                region: region.into(),
                postal_code: zip.into(),
                country: "US".into(),
                geo: Some(GeoPoint { latitude_micro: lat, longitude_micro: lon }),
            },
            bill_to: None,
            lines,
            shipping: Shipping {
                method: if n % 5 == 0 { "next_day".into() } else { "standard".into() },
                service_level: if n % 5 == 0 { ServiceLevel::NextDay } else { ServiceLevel::Standard },
                ship_by: None,
                deliver_by: None,
            },
            payment_status: PaymentStatus::Captured,
            fraud: FraudAssessment { score: Some(rng.random_range(0..60)), recommendation: None },
            fulfillment: FulfillmentIntent::Ship { ship_from_store_allowed: channel == "SHOPIFY-DTC" },
            currency: CurrencyCode::new("USD").expect("valid"),
            tags: vec![],
        };
        // The exceptions of a normal day.
        match n % 37 {
            3 => order.payment_status = PaymentStatus::Pending,
            7 => order.fraud = FraudAssessment { score: Some(88), recommendation: Some(FraudRecommendation::Review) },
            11 => order.lines[0].item = LineItem::Listing("B0UNKNOWN".into()),
            13 if channel == "B2B-EDI" => order.customer.id = "ACME-STORES".into(),
            17 => order.shipping.method = "carrier_pigeon".into(),
            19 if channel == "SHOPIFY-DTC" => {
                order.fulfillment = FulfillmentIntent::PickUpInStore { store: code("STORE-NYC") };
                order.shipping.method = "pickup".into();
            }
            _ => {}
        }
        out.push(Command::Order(OrderCommand::Capture(Box::new(order))));
    }
    // Later in the day: two unpaid orders are paid, one is cancelled by the customer.
    for n in [3usize, 40] {
        let channel = channels[n % channels.len()];
        out.push(Command::Order(OrderCommand::UpdatePayment {
            key: ordo_domain::orders::model::OrderKey {
                channel: code(channel),
                channel_order_id: format!("{}-{}", &channel[..3], 100_000 + n),
            },
            status: PaymentStatus::Captured,
            actor: Actor::Connector(channel.into()),
        }));
    }
    for n in [1usize, 25, 61] {
        let channel = channels[n % channels.len()];
        out.push(Command::Order(OrderCommand::Cancel {
            key: ordo_domain::orders::model::OrderKey {
                channel: code(channel),
                channel_order_id: format!("{}-{}", &channel[..3], 100_000 + n),
            },
            actor: Actor::User("cs-agent".into()),
            reason: "customer changed their mind".into(),
        }));
    }
    out
}

/// The afternoon on the floor: half the allocated orders (by key) are released, picked, packed
/// and shipped, one shipment per node they were reserved at; a third of those are already
/// delivered and a sixth closed.
pub fn afternoon_on_the_floor(state: &ordo_domain::State) -> Vec<Command> {
    use ordo_domain::orders::book::ShipmentRequest;
    use ordo_domain::orders::lifecycle::OrderStatus;
    let floor = Actor::User("floor-lead".into());
    let mut out = Vec::new();
    let allocated = state.orders().all().filter(|r| r.status == OrderStatus::Allocated);
    for (n, r) in allocated.step_by(2).enumerate() {
        let key = r.key();
        let order = |c: OrderCommand| Command::Order(c);
        out.push(order(OrderCommand::Dispatch { key: key.clone(), actor: floor.clone(), ship_partial: false }));
        out.push(order(OrderCommand::StartPicking { key: key.clone(), actor: floor.clone() }));
        out.push(order(OrderCommand::Pack { key: key.clone(), actor: floor.clone() }));
        let nodes: std::collections::BTreeSet<&ordo_types::LocationCode> =
            r.lines.iter().flat_map(|l| &l.reservations).map(|x| &x.location).collect();
        let carrier = if n % 4 == 0 { "FedEx" } else { "UPS" };
        let mut shipments = Vec::new();
        for (i, node) in nodes.into_iter().enumerate() {
            let shipment_id = format!("{}-{}", key.channel_order_id, i + 1);
            shipments.push(shipment_id.clone());
            out.push(order(OrderCommand::Ship {
                key: key.clone(),
                actor: floor.clone(),
                shipment: ShipmentRequest {
                    shipment_id,
                    location: node.clone(),
                    carrier: carrier.into(),
                    service: r.order.shipping.method.clone(),
                    tracking: format!("1Z{:06}{:02}", 100_000 + n, i + 1),
                    lines: Vec::new(),
                },
            }));
        }
        if n % 3 == 0 {
            for shipment_id in shipments {
                out.push(order(OrderCommand::ConfirmDelivery {
                    key: key.clone(),
                    actor: Actor::Connector(carrier.into()),
                    shipment_id,
                }));
            }
            if n % 6 == 0 {
                out.push(order(OrderCommand::Close {
                    key: key.clone(),
                    actor: Actor::System,
                    reason: "delivered; nothing open".into(),
                }));
            }
        }
    }
    out
}
