//! Fair shares between tenants: a tenant's burst or backlog of retries
//! does not queue another tenant's webhooks behind it, on both backends
//! (SQLite with the in-process queue; PostgreSQL with RabbitMQ) and with
//! two hubs sharing one PostgreSQL and one queue; and what waits is
//! reported per tenant class.
//!
//! The assertions are on order and counts, not on wall-clock time: where
//! the quiet tenant's webhook lands among the burst's.
use crate::common;

use common::receiver::Receiver;
use common::{fanned_out, post_events, Backend, TestHub};
use hookhub::{Hub, Role};
use hookhub_dispatcher::express_lane::PER_TENANT;
use hookhub_dispatcher::outbox_relay::OutboxRelay;
use hookhub_dispatcher::queue::amqp::{AmqpConfig, AmqpPublisher};
use hookhub_dispatcher::queue::{decode, EventMessage, Lane, Publisher};
use hookhub_dispatcher::RelayConfig;
use hookhub_store::domain::{now, Plan, TenantId};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

crate::on_both_backends!(
    a_quiet_tenants_event_goes_out_ahead_of_a_burst,
    claims_take_tenants_in_turn,
    claims_of_one_do_not_all_go_to_the_most_overdue_tenant,
    a_claim_by_name_takes_a_few_of_each_however_big_a_backlog,
    a_quiet_tenants_retry_goes_out_ahead_of_a_backlog_of_retries,
    a_quiet_tenants_retry_goes_out_while_a_burst_fills_the_loop,
    the_backlog_is_counted_per_plan,
);

/// A second tenant subscribed to bookings at `url`; returns its key.
async fn quiet_tenant(hub: &TestHub, url: &str) -> String {
    let key = hub.new_tenant().await;
    let created = reqwest::Client::new()
        .post(format!("{}/v1/subscriptions", hub.base))
        .bearer_auth(&key)
        .json(&json!({"url": url, "event_types": ["appointment.booked"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    key
}

/// Webhooks of the burst: 4 subscriptions × this many events.
const BURST_EVENTS: usize = 300;

async fn a_quiet_tenants_event_goes_out_ahead_of_a_burst(backend: Backend) {
    quiet_ahead_of_burst(backend, 1).await;
}

/// Scale-out: two whole hubs on one PostgreSQL and one RabbitMQ queue, each
/// relaying, consuming and claiming retries; the burst is posted to one and
/// the quiet event to the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_two_hubs_a_quiet_tenants_event_goes_out_ahead_of_a_burst() {
    quiet_ahead_of_burst(Backend::Postgres, 2).await;
}

/// The burst of [`BURST_EVENTS`] to four slow endpoints, then one quiet
/// event, on `hubs` hubs sharing the store and queue.
async fn quiet_ahead_of_burst(backend: Backend, hubs: usize) {
    let receiver = Receiver::start().await;
    // Slow enough that the burst takes seconds to deliver: its backlog
    // is what the quiet tenant's event must not queue behind.
    for n in 0..4 {
        receiver.set_path_delay(&format!("/burst/{n}"), Duration::from_millis(10));
    }
    let hub = TestHub::start_with(backend, |s| {
        s.delivery_concurrency = 4;
        s.delivery_concurrency_per_subscription = 1;
    })
    .await;
    let mut others = Vec::new();
    for _ in 1..hubs {
        others.push(Hub::start(&hub.settings, Role::All).await.expect("another hub starts"));
    }
    let bases: Vec<String> = std::iter::once(hub.base.clone())
        .chain(others.iter().map(|h| format!("http://127.0.0.1:{}", h.port().unwrap())))
        .collect();
    for n in 0..4 {
        hub.subscribe(&receiver.url(&format!("/burst/{n}")), &["client.created"]).await;
    }
    let quiet_key = quiet_tenant(&hub, &receiver.url("/quiet")).await;

    post_events(&bases[..1], &hub.key, BURST_EVENTS, |n| ("client.created", json!({"n": n}))).await;
    post_events(&bases[bases.len() - 1..], &quiet_key, 1, |_| {
        ("appointment.booked", json!({"appointment_id": "apt_1"}))
    })
    .await;

    let quiet_at = receiver.wait_for("/quiet", 1).await[0].at;
    let burst = 4 * BURST_EVENTS;
    let burst_paths: Vec<String> = (0..4).map(|n| format!("/burst/{n}")).collect();
    for path in &burst_paths {
        receiver.wait_for_ids(path, BURST_EVENTS, Duration::from_secs(120)).await;
    }
    let before_quiet = receiver.all().iter().filter(|r| r.path.starts_with("/burst/") && r.at < quiet_at).count();
    // First come, first served, the quiet tenant's webhook would be the
    // last of all; served in turn, it goes out while most of the burst
    // still waits.
    assert!(
        before_quiet < burst / 2,
        "{before_quiet} of the burst's {burst} webhooks went out before the quiet tenant's one"
    );
    for other in others {
        other.shutdown().await;
    }
    hub.stop().await;
}

async fn claims_take_tenants_in_turn(backend: Backend) {
    let (settings, store, busy) = common::test_store(backend).await;
    let (quiet, _) = store.create_tenant("quiet").await.unwrap();
    common::subscribe_in_store(&store, &busy, "http://127.0.0.1:9/busy").await;
    common::subscribe_in_store(&store, &quiet, "http://127.0.0.1:9/quiet").await;

    // The outbox: 30 of the busy tenant's rows, then the quiet tenant's one.
    for n in 0..30 {
        store.ingest_event(&busy.id, common::client_created(json!({"n": n}))).await.unwrap();
    }
    let last = store.ingest_event(&quiet.id, common::client_created(json!({}))).await.unwrap().event;
    let claim = store.claim_outbox(4, chrono::Duration::seconds(30)).await.unwrap();
    let tenants: Vec<_> = claim.items.iter().map(|i| i.tenant_id.clone()).collect();
    assert_eq!(tenants.len(), 4);
    assert!(claim.items.iter().any(|i| i.event_id == last.id), "the quiet tenant's row waits behind: {tenants:?}");
    assert_eq!(tenants.iter().filter(|t| **t == quiet.id).count(), 1);

    // Due retries: 30 of the busy tenant's, due longer ago than the quiet one's.
    for _ in 0..30 {
        fanned_out(&store, &busy, now() - chrono::Duration::hours(1)).await;
    }
    let quiet_due = fanned_out(&store, &quiet, now() - chrono::Duration::seconds(1)).await;
    let due = store.claim_due_deliveries(4, chrono::Duration::seconds(30)).await.unwrap();
    assert_eq!(due.len(), 4);
    assert!(due.iter().any(|d| &d.id == quiet_due[0].id()), "the quiet tenant's retry waits behind: {due:?}");
    assert!(due.iter().all(|d| d.tenant_id == busy.id || d.tenant_id == quiet.id));
    common::drop_test_resources(&settings).await;
}

/// The poller's claim by name, with a tenant whose backlog is hundreds of
/// due rows beside a tenant with one: each gets its own few, oldest first,
/// and a third tenant's due rows, not named, stay where they are.
async fn a_claim_by_name_takes_a_few_of_each_however_big_a_backlog(backend: Backend) {
    let (settings, store, busy) = common::test_store(backend).await;
    let (quiet, _) = store.create_tenant("quiet").await.unwrap();
    let (other, _) = store.create_tenant("other").await.unwrap();
    for tenant in [&busy, &quiet, &other] {
        common::subscribe_in_store(&store, tenant, &format!("http://127.0.0.1:9/{}", tenant.id)).await;
    }
    let mut oldest_busy = Vec::new();
    for n in 0..300 {
        let due = fanned_out(&store, &busy, now() - chrono::Duration::seconds(600 - n)).await;
        if n < 4 {
            oldest_busy.push(due[0].id().clone());
        }
    }
    let quiet_due = fanned_out(&store, &quiet, now() - chrono::Duration::seconds(1)).await;
    fanned_out(&store, &other, now() - chrono::Duration::hours(1)).await;
    // Due later: not claimed.
    fanned_out(&store, &quiet, now() + chrono::Duration::hours(1)).await;

    let lease = chrono::Duration::seconds(30);
    let claimed = store.claim_due_of(&[busy.id.clone(), quiet.id.clone()], 4, lease).await.unwrap();
    let mut busy_claimed: Vec<_> = claimed.iter().filter(|d| d.tenant_id == busy.id).map(|d| d.id.clone()).collect();
    busy_claimed.sort();
    oldest_busy.sort();
    assert_eq!(busy_claimed, oldest_busy, "the busy tenant's four oldest: {claimed:?}");
    let quiet_claimed: Vec<_> = claimed.iter().filter(|d| d.tenant_id == quiet.id).collect();
    assert_eq!(quiet_claimed.len(), 1, "the quiet tenant's one due row: {claimed:?}");
    assert_eq!(&quiet_claimed[0].id, quiet_due[0].id());
    assert_eq!(claimed.len(), 5, "nothing of the tenant not named: {claimed:?}");
    // Leased: claimed again, the busy tenant's next four and nothing of the quiet one's.
    let again = store.claim_due_of(&[busy.id.clone(), quiet.id.clone()], 4, lease).await.unwrap();
    assert_eq!(again.len(), 4);
    assert!(again.iter().all(|d| d.tenant_id == busy.id && !oldest_busy.contains(&d.id)), "{again:?}");
    common::drop_test_resources(&settings).await;
}

async fn claims_of_one_do_not_all_go_to_the_most_overdue_tenant(backend: Backend) {
    let (settings, store, busy) = common::test_store(backend).await;
    let (quiet, _) = store.create_tenant("quiet").await.unwrap();
    common::subscribe_in_store(&store, &busy, "http://127.0.0.1:9/busy").await;
    common::subscribe_in_store(&store, &quiet, "http://127.0.0.1:9/quiet").await;
    for _ in 0..30 {
        fanned_out(&store, &busy, now() - chrono::Duration::hours(1)).await;
    }
    let quiet_due = fanned_out(&store, &quiet, now() - chrono::Duration::seconds(1)).await;
    // The poller claims as many as places just freed, often one. Oldest
    // first, the busy tenant's hour-old backlog would win all thirty; in
    // turn, each claim of one is an even draw between the two tenants, so
    // twenty claims miss the quiet one with odds of one in a million.
    let mut claimed = Vec::new();
    for _ in 0..20 {
        claimed.extend(store.claim_due_deliveries(1, chrono::Duration::seconds(30)).await.unwrap());
        if claimed.iter().any(|d| &d.id == quiet_due[0].id()) {
            break;
        }
    }
    assert!(
        claimed.iter().any(|d| &d.id == quiet_due[0].id()),
        "twenty claims of one, all to the busy tenant: {claimed:?}"
    );
    common::drop_test_resources(&settings).await;
}

async fn a_quiet_tenants_retry_goes_out_ahead_of_a_backlog_of_retries(backend: Backend) {
    let receiver = Receiver::start().await;
    let hub = TestHub::start_with(backend, |s| {
        s.delivery_concurrency = 2;
        s.delivery_concurrency_per_subscription = 2;
        // Every failure comes due again at once: the retry path is all
        // there is, and the busy tenant's backlog of it is never empty.
        s.retry_schedule = "10ms,10ms,10ms,10ms,10ms,10ms,10ms,10ms".into();
    })
    .await;
    receiver.set_path_delay("/failing", Duration::from_millis(5));
    receiver.script("/failing", &[500; 10_000]);
    hub.subscribe(&receiver.url("/failing"), &["client.created"]).await;
    receiver.script("/quiet", &[500]);
    let quiet_key = quiet_tenant(&hub, &receiver.url("/quiet")).await;

    post_events(std::slice::from_ref(&hub.base), &hub.key, 200, |n| ("client.created", json!({"n": n}))).await;
    // Wait until the busy tenant's deliveries are all in the retry path.
    common::eventually(Duration::from_secs(60), || async {
        (receiver.received("/failing").len() >= 200).then_some(())
    })
    .await;
    post_events(std::slice::from_ref(&hub.base), &quiet_key, 1, |_| ("appointment.booked", json!({}))).await;

    // The quiet tenant's first attempt fails; its retry is the second arrival.
    let quiet = receiver.wait_for("/quiet", 2).await;
    let failing = receiver.received("/failing");
    let between = failing.iter().filter(|r| r.at > quiet[0].at && r.at < quiet[1].at).count();
    // First come, first served, its retry would wait behind the 200 due
    // before it; in turn, behind about one per loop place.
    assert!(between < 50, "{between} of the busy tenant's retries went out before the quiet tenant's retry");
    hub.stop().await;
}

/// While a burst's first attempts keep every place of the loop taken
/// (fan-out hands over what it wrote, and each freed place goes to a waiter
/// in turn), a quiet tenant's retry that comes due is only in the store:
/// it must still get into the turn rather than wait for a free place,
/// which comes only once the burst is done.
async fn a_quiet_tenants_retry_goes_out_while_a_burst_fills_the_loop(backend: Backend) {
    const SUBSCRIPTIONS: usize = 4;
    const EVENTS: usize = 150;
    let receiver = Receiver::start().await;
    let hub = TestHub::start_with(backend, |s| {
        s.delivery_concurrency = 2;
        s.delivery_concurrency_per_subscription = 2;
        s.retry_schedule = "10ms,10ms,10ms".into();
    })
    .await;
    for n in 0..SUBSCRIPTIONS {
        let path = format!("/burst{n}");
        receiver.set_path_delay(&path, Duration::from_millis(20));
        hub.subscribe(&receiver.url(&path), &["client.created"]).await;
    }
    receiver.script("/quiet", &[500]);
    let quiet_key = quiet_tenant(&hub, &receiver.url("/quiet")).await;
    let burst_arrivals = || (0..SUBSCRIPTIONS).map(|n| receiver.received(&format!("/burst{n}"))).collect::<Vec<_>>();

    post_events(std::slice::from_ref(&hub.base), &hub.key, EVENTS, |n| ("client.created", json!({"n": n}))).await;
    common::eventually(Duration::from_secs(60), || async {
        (burst_arrivals().iter().map(Vec::len).sum::<usize>() >= 40).then_some(())
    })
    .await;
    post_events(std::slice::from_ref(&hub.base), &quiet_key, 1, |_| ("appointment.booked", json!({}))).await;

    // The first attempt fails; the retry is the second arrival.
    let quiet = receiver.wait_for("/quiet", 2).await;
    let mut burst = Vec::new();
    for n in 0..SUBSCRIPTIONS {
        burst.extend(receiver.wait_for(&format!("/burst{n}"), EVENTS).await);
    }
    let between = burst.iter().filter(|r| r.at > quiet[0].at && r.at < quiet[1].at).count();
    let after = burst.iter().filter(|r| r.at > quiet[1].at).count();
    // Waiting for a free place, the retry would go after nearly all of the
    // burst; in turn, after a few of its attempts.
    assert!(between < 40, "{between} of the burst's webhooks went out before the quiet tenant's retry");
    assert!(after > 100, "the burst was still going: {after} of its webhooks after the retry");
    hub.stop().await;
}

async fn the_backlog_is_counted_per_plan(backend: Backend) {
    let (settings, store, busy) = common::test_store(backend).await;
    let (pro, _) = store.create_tenant_on("pro", Plan::Pro).await.unwrap();
    assert_ne!(busy.plan, Plan::Pro, "two classes");
    common::subscribe_in_store(&store, &busy, "http://127.0.0.1:9/busy").await;
    common::subscribe_in_store(&store, &pro, "http://127.0.0.1:9/pro").await;
    for _ in 0..3 {
        fanned_out(&store, &busy, now() - chrono::Duration::minutes(10)).await;
    }
    fanned_out(&store, &pro, now() - chrono::Duration::seconds(30)).await;
    // Due in an hour: waiting, but not due.
    fanned_out(&store, &pro, now() + chrono::Duration::hours(1)).await;

    let by_plan = store.backlog_by_plan().await.unwrap();
    let busy_class = by_plan[&busy.plan];
    // Each fanned-out event also left its outbox row unpublished (no relay runs).
    assert_eq!((busy_class.outbox, busy_class.due), (3, 3), "{by_plan:?}");
    let oldest = now() - busy_class.oldest_due.expect("an oldest due delivery");
    assert!(oldest >= chrono::Duration::minutes(9) && oldest <= chrono::Duration::minutes(11), "{oldest:?}");
    let pro_class = by_plan[&Plan::Pro];
    assert_eq!((pro_class.outbox, pro_class.due), (2, 1), "{by_plan:?}");
    assert!(now() - pro_class.oldest_due.unwrap() < chrono::Duration::minutes(1));
    assert!(!by_plan.contains_key(&Plan::Studio), "a class with nothing waiting is absent");
    common::drop_test_resources(&settings).await;
}

/// The messages waiting in `queue`, taken off it.
async fn take_queued(amqp: &AmqpConfig, queue: &str) -> Vec<EventMessage> {
    use lapin::options::BasicGetOptions;
    let conn = lapin::Connection::connect(&amqp.url, lapin::ConnectionProperties::default()).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let mut events = Vec::new();
    while let Some(message) = channel.basic_get(queue, BasicGetOptions { no_ack: true }).await.unwrap() {
        events.extend(decode(&message.delivery.data).unwrap());
    }
    conn.close(200, "taken").await.unwrap();
    events
}

/// Pending outbox rows of `tenant`.
async fn pending(store: &hookhub_store::Store, tenant: &TenantId) -> u64 {
    let backlog = store.tenants_with_backlog(1).await.unwrap();
    backlog.into_iter().find(|(t, _)| t == tenant).map_or(0, |(_, n)| n)
}

/// While the broker holds a message no consumer has taken, the main lane
/// waits and keeps the busy tenant's backlog in the outbox; the express
/// lane moves the quiet tenant's event past it, to the express queue,
/// which has prefetch slots of its own. Of the busy tenant's rows, the
/// express lane carries at most one claim's share before it leaves the
/// tenant to the main lane, which moves the rest once the broker is no
/// longer ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_main_lane_waits_a_quiet_tenants_event_takes_the_express_lane() {
    let (settings, store, busy) = common::test_store(Backend::Postgres).await;
    let (quiet, _) = store.create_tenant("quiet").await.unwrap();
    let amqp = settings.amqp_config().expect("a RabbitMQ test");
    let publisher = Arc::new(AmqpPublisher::new(amqp.clone()));
    let nobodys = EventMessage {
        event_id: hookhub_store::domain::EventId::generate().to_string(),
        tenant_id: busy.id.to_string(),
        event_type: "client.created".into(),
        ordering_key: None,
    };
    publisher.publish(&[nobodys], Lane::Main).await.unwrap();

    const BACKLOG: u64 = 200;
    for n in 0..BACKLOG {
        store.ingest_event(&busy.id, common::client_created(json!({"n": n}))).await.unwrap();
    }
    let last = store.ingest_event(&quiet.id, common::client_created(json!({}))).await.unwrap().event;
    let relay = OutboxRelay::new(store.clone(), publisher, RelayConfig::default());
    let nudge = relay.nudge();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(relay.run(shutdown.clone()));
    // As ingest does after each event it accepted.
    nudge.accepted(&busy.id);
    nudge.accepted(&quiet.id);

    common::eventually(Duration::from_secs(10), || async { (pending(&store, &quiet.id).await == 0).then_some(()) })
        .await;
    let express = take_queued(&amqp, &amqp.express_queue()).await;
    assert!(express.iter().any(|e| e.event_id == last.id.to_string()), "the quiet event is on the express lane");
    let busy_express = express.iter().filter(|e| e.tenant_id == busy.id.to_string()).count() as u64;
    assert!(busy_express <= PER_TENANT, "{busy_express} of the backlog took the express lane");
    assert_eq!(pending(&store, &busy.id).await, BACKLOG - busy_express, "the backlog waits in the outbox");

    // The consumers catch up: the main lane moves the backlog.
    assert_eq!(take_queued(&amqp, &amqp.queue).await.len(), 1, "only the message nobody took");
    common::eventually(Duration::from_secs(10), || async { (pending(&store, &busy.id).await == 0).then_some(()) })
        .await;
    shutdown.cancel();
    running.await.unwrap();
    let main = take_queued(&amqp, &amqp.queue).await;
    assert_eq!(main.len() as u64 + busy_express, BACKLOG, "every event published once");
    common::drop_test_resources(&settings).await;
}
