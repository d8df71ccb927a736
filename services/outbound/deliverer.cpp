#include "deliverer.h"

#include <glog/logging.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <ctime>

#include "chatwoot.h"
#include "convoy/crypto.h"
#include "convoy/events.h"
#include "convoy/http.h"
#include "convoy/log.h"
#include "convoy/metrics.h"
#include "convoy/rapidjson_util.h"
#include "convoy/rfc3339.h"
#include "convoy/topology.h"
#include "order_statements.h"

namespace convoy::outbound {

namespace {

constexpr const char* kInsert =
    "INSERT INTO deliveries (result_id, sink, type, conversation_key, correlation_id, command, "
    "status, completed_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, 'pending', to_timestamp($7::bigint)) ON CONFLICT (result_id, "
    "sink) DO NOTHING";
// Where the delivery stands: status, attempts, ms until its next attempt may go, age of the
// attempt in flight (s), what the sink created.
constexpr const char* kLookup =
    "SELECT id, status, attempts, "
    "coalesce(ceil(extract(epoch FROM next_attempt_at - clock_timestamp()) * 1000), 0)::bigint, "
    "coalesce(extract(epoch FROM clock_timestamp() - attempt_started_at), 1e9)::float8, "
    "coalesce(external_id, ''), "
    "coalesce(external_detail, '') "
    "FROM deliveries WHERE result_id = $1 AND sink = $2";
constexpr const char* kDisabled = "SELECT reason FROM sink_states WHERE name = $1";
constexpr const char* kHold =
    "UPDATE deliveries SET status = 'held', last_error = $2, updated_at = now() WHERE id = "
    "$1::bigint";
// An attempt in flight elsewhere (younger than $2 s) is not claimed again.
constexpr const char* kClaim =
    "WITH prev AS (SELECT status FROM deliveries WHERE id = $1::bigint) "
    "UPDATE deliveries d SET status = 'attempting', attempts = d.attempts + 1, attempt_started_at "
    "= clock_timestamp(), "
    "updated_at = now() WHERE d.id = $1::bigint AND d.status IN ('pending', 'retrying', "
    "'attempting', 'uncertain') "
    "AND (d.status NOT IN ('attempting', 'uncertain') OR d.attempt_started_at < clock_timestamp() "
    "- "
    "make_interval(secs => $2::float8)) RETURNING d.attempts, (SELECT status FROM prev)";
constexpr const char* kRecordAttempt =
    "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status_code, "
    "response, error, outcome) "
    "VALUES ($1::bigint, $2::int, to_timestamp($3::float8), $4::int, $5::int, $6, $7, $8)";
constexpr const char* kDelivered =
    "UPDATE deliveries SET status = 'delivered', delivered_at = now(), last_status_code = $3::int, "
    "last_error = NULL, "
    "external_id = coalesce($4, external_id), next_attempt_at = NULL, updated_at = now() WHERE "
    "result_id = $1 AND sink = $2 AND status <> 'delivered' RETURNING 1";
constexpr const char* kRetrying =
    "UPDATE deliveries SET status = $2, last_status_code = $3::int, last_error = $4, attempts = "
    "attempts - $6::int, "
    "next_attempt_at = clock_timestamp() + make_interval(secs => $5::float8), updated_at = now() "
    "WHERE id = $1::bigint";
constexpr const char* kPark =
    "UPDATE deliveries SET status = 'parked', last_status_code = $2::int, last_error = $3, "
    "next_attempt_at = NULL, "
    "updated_at = now() WHERE id = $1::bigint";
constexpr const char* kDisable =
    "INSERT INTO sink_states (name, reason) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
constexpr const char* kExternalId =
    "UPDATE deliveries SET external_id = $2, external_detail = $3 WHERE id = $1::bigint";

// A sink took the delivery (2xx) and recording it failed: the answer's status code, and what the
// sink made (a product's or message's id), kept with the command while only the record is retried,
// so that no redelivery, delay or replay delivers again.
constexpr const char* kSinkTookHeader = "x-sink-took";
constexpr const char* kSinkMadeHeader = "x-sink-made";
constexpr const char* kRecordAttemptsHeader = "x-record-attempts";

constexpr double kShopifyCreateCost =
    30;  // points a draft product costs: productCreate with media, then its price

int64_t SystemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Counter& Delivered(const std::string& sink, const char* outcome) {
  return DefaultRegistry().GetCounter("convoy_deliveries_total",
                                      "Delivery attempts to sinks by outcome.",
                                      "sink=\"" + sink + "\",outcome=\"" + outcome + "\"");
}

std::string First1KiB(const std::string& s) {
  if (s.size() <= 1024) return s;
  size_t cut = 1024;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut);
}

}  // namespace

struct Deliverer::Job {
  std::string id, result_id, sink, type, command, correlation, conversation;
  int attempt = 0;
  rapidjson::Document doc;
};

struct Deliverer::Outcome {
  enum class Kind { kDelivered, kRetry, kUncertain, kPermanent, kGone, kThrottled };
  Kind kind = Kind::kRetry;
  int status_code = 0;
  std::string response, error, external_id;
  int64_t retry_after_ms = 0;
};

int64_t RetryAfterSeconds(const std::string& value, int64_t now) {
  if (value.empty()) return -1;
  if (std::all_of(value.begin(), value.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return value.size() > 9 ? -1 : std::atoll(value.c_str());
  }
  std::tm tm{};
  if (!strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) return -1;
  return std::max<int64_t>(0, static_cast<int64_t>(timegm(&tm)) - now);
}

std::string ResultBody(const std::string& command_json, const std::string& media_base_url,
                       const std::string& link_secret, int64_t link_expires) {
  return *ResultBody(command_json, media_base_url, link_secret, link_expires, PhotoFetch());
}

Result<std::string> ResultBody(const std::string& command_json, const std::string& media_base_url,
                               const std::string& link_secret, int64_t link_expires,
                               const PhotoFetch& fetch) {
  rapidjson::Document c;
  c.Parse(command_json.c_str(), command_json.size());
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  auto str = [&](const char* key, const std::string& v) {
    w.Key(key);
    w.String(v);
  };
  w.StartObject();
  str("type", JsonStr(c, "type"));
  str("timestamp",
      Rfc3339(JsonMember(c, "completed_at").IsInt64() ? c["completed_at"].GetInt64() : 0));
  w.Key("data");
  w.StartObject();
  str("result_id", JsonStr(c, "result_id"));
  str("flow", JsonStr(c, "flow"));
  str("outcome", JsonStr(c, "outcome"));
  str("phone_number_id", JsonStr(c, "phone_number_id"));
  w.Key("contact");
  w.StartObject();
  if (!JsonStr(c, "wa_id").empty()) str("wa_id", JsonStr(c, "wa_id"));
  if (!JsonStr(c, "user_id").empty()) str("user_id", JsonStr(c, "user_id"));
  w.EndObject();
  w.Key("fields");
  JsonMember(c, "fields").Accept(w);
  w.Key("photos");
  w.StartArray();
  const auto& photos = JsonMember(c, "photos");
  if (photos.IsArray()) {
    for (const auto& p : photos.GetArray()) {
      w.StartObject();
      str("field", JsonStr(p, "field"));
      str("media_id", JsonStr(p, "media_id"));
      for (const char* what : {"mime_type", "filename"}) {  // a document's type and name
        if (!JsonStr(p, what).empty()) str(what, JsonStr(p, what));
      }
      std::string stored = JsonStr(p, "stored_name");
      if (!stored.empty()) {
        const std::string url = MediaLink(media_base_url, link_secret, stored, link_expires);
        str("status", "stored");
        str("url", url);
        str("expires_at", Rfc3339(link_expires));
        if (fetch) {
          auto bytes = fetch(url);
          if (!bytes.ok()) return bytes.status();
          // The type media verified (a document's is its own); a photo from before types were
          // recorded by its extension.
          const std::string ext = stored.substr(stored.rfind('.') + 1),
                            mime = JsonStr(p, "mime_type");
          str("content_type", !mime.empty() ? mime : ext == "png" ? "image/png" : "image/jpeg");
          str("content_base64", Base64Encode(*bytes));
        }
      } else {
        str("status", "missing");
        str("reason", JsonStr(p, "missing").empty() ? "not stored" : JsonStr(p, "missing"));
      }
      w.EndObject();
    }
  }
  w.EndArray();
  // A conversation's own members (its id, owner, the transcript of a handoff, a customer message).
  if (const auto& conv = JsonMember(c, "conversation"); conv.IsObject()) {
    w.Key("conversation");
    conv.Accept(w);
  }
  w.EndObject();
  w.EndObject();
  return std::string(b.GetString(), b.GetSize());
}

Deliverer::Deliverer(PgConnection& db, const SchemaRegistry& schemas, const SinkSet& sinks,
                     DeliverySettings settings, shopify::Throttle& throttle)
    : db_(db),
      schemas_(schemas),
      sinks_(sinks),
      settings_(std::move(settings)),
      throttle_(throttle) {
  if (!settings_.now) settings_.now = SystemNow;
}

Result<std::string> Deliverer::WebhookBody(const Job& job, const Sink& sink) {
  PhotoFetch fetch;
  if (sink.inline_photos) {
    // The photo from media's own link (no token), bounded per photo.
    fetch = [&sink](const std::string& url) -> Result<std::string> {
      HttpClientRequest get;
      get.url = url;
      get.max_response_bytes = sink.inline_max_bytes;
      auto r = HttpFetch(get);
      if (!r.ok()) {
        return Status(
            r.status().code() == Code::kTooLarge ? Code::kInvalidArgument : Code::kUnavailable,
            "reading a photo to carry inline: " + r.status().message());
      }
      if (r->status != 200)
        return Status(Code::kUnavailable, "reading a photo to carry inline: media answered " +
                                              std::to_string(r->status));
      return r->body;
    };
  }
  auto built = ResultBody(job.command, settings_.media_base_url, settings_.link_secret,
                          settings_.now() + settings_.link_ttl.count(), fetch);
  if (!built.ok()) return built.status();
  const std::string& body = *built;
  Status valid = schemas_.ValidateAs(job.type, 1, body);
  if (!valid.ok())
    return Status(Code::kInvalidArgument,
                  "the " + job.type + " body does not match its schema: " + valid.message());
  return body;
}

Deliverer::Outcome Deliverer::Webhook(const Sink& sink, const Job& job, const std::string& body) {
  Outcome o;
  const int64_t ts = settings_.now();
  HttpClientRequest req;
  req.method = "POST";
  req.url = sink.url;
  req.public_only = !sink.allow_private;
  req.body = body;
  req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(sink.timeout);
  req.headers["webhook-id"] = job.result_id;
  req.headers["webhook-timestamp"] = std::to_string(ts);
  req.headers["webhook-signature"] = WebhookSignature(sink.keys, job.result_id, ts, body);
  req.headers["User-Agent"] = "convoy-outbound";
  auto resp = HttpFetch(req);
  if (!resp.ok()) {
    o.kind = Outcome::Kind::kUncertain;
    o.error = resp.status().ToString();
    return o;
  }
  o.status_code = resp->status;
  o.response = First1KiB(resp->body);
  const int s = resp->status;
  if (s / 100 == 2) {
    o.kind = Outcome::Kind::kDelivered;
  } else if (s == 410) {
    o.kind = Outcome::Kind::kGone;
    o.error = "410 Gone: the receiver asked for no more deliveries";
  } else if (s == 408 || s == 429 || s / 100 == 5 || s / 100 == 3) {
    o.kind = Outcome::Kind::kRetry;
    o.error = "HTTP " + std::to_string(s) +
              (s / 100 == 3 ? " (redirects are not followed: fix the sink's URL)" : "");
    if (s == 429 || s == 503) {
      auto it = resp->headers.find("retry-after");  // HttpFetch lower-cases header names
      int64_t after = it == resp->headers.end() ? -1 : RetryAfterSeconds(it->second, ts);
      if (after >= 0) o.retry_after_ms = after * 1000;
    }
  } else {
    o.kind = Outcome::Kind::kPermanent;
    o.error = "HTTP " + std::to_string(s) + " (a client error is not retried)";
  }
  return o;
}

Deliverer::Outcome Deliverer::Shopify(const Sink& sink, const Job& job, bool reconcile,
                                      const std::string& known_product,
                                      const std::string& known_variant) {
  Outcome o;
  auto call = [&](const std::string& body, const std::string& kind, shopify::Answer* a) -> bool {
    HttpClientRequest req;
    req.method = "POST";
    req.url = sink.url;
    req.public_only = !sink.allow_private;
    req.body = body;
    req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(sink.timeout);
    req.headers["X-Shopify-Access-Token"] = sink.token;
    auto resp = HttpFetch(req);
    if (!resp.ok()) {
      o.kind = Outcome::Kind::kUncertain;
      o.error = kind + ": " + resp.status().ToString();
      return false;
    }
    o.status_code = resp->status;
    o.response = First1KiB(resp->body);
    if (resp->status == 429 || resp->status / 100 == 5) {
      o.kind = resp->status == 429 ? Outcome::Kind::kThrottled : Outcome::Kind::kRetry;
      auto it = resp->headers.find("retry-after");
      int64_t after =
          it == resp->headers.end() ? -1 : RetryAfterSeconds(it->second, settings_.now());
      o.retry_after_ms = after >= 0 ? after * 1000 : 1000;
      o.error = kind + ": HTTP " + std::to_string(resp->status);
      return false;
    }
    if (resp->status / 100 != 2) {
      o.kind = Outcome::Kind::kPermanent;
      o.error = kind + ": HTTP " + std::to_string(resp->status);
      return false;
    }
    *a = shopify::ParseAnswer(resp->body, kind);
    throttle_.Update(sink.url, *a);
    if (a->throttled) {
      o.kind = Outcome::Kind::kThrottled;
      o.retry_after_ms = shopify::Throttle::WaitAfterThrottled(*a, kShopifyCreateCost).count();
      o.error = kind + ": throttled";
      return false;
    }
    if (!a->errors.empty()) {
      o.kind = Outcome::Kind::kRetry;
      o.error = kind + ": " + a->errors;
      return false;
    }
    if (!a->user_errors.empty()) {
      o.kind = Outcome::Kind::kPermanent;
      o.error = kind + ": " + a->user_errors;
      return false;
    }
    return true;
  };
  std::map<std::string, std::string> fields;
  const auto& f = JsonMember(job.doc, "fields");
  if (f.IsObject()) {
    for (const auto& m : f.GetObject())
      fields[m.name.GetString()] = m.value.IsString() ? m.value.GetString() : "";
  }
  shopify::ProductInput product = shopify::ListingProduct(fields, sink.vendor);
  product.tag = shopify::TagFor(job.result_id);
  std::string whatsapp = JsonStr(job.doc, "wa_id");
  shopify::AddSeller(product, job.result_id, fields["email"],
                     whatsapp.empty() ? JsonStr(job.doc, "user_id") : whatsapp);
  // A product an earlier attempt made and recorded is not made again.
  std::string product_id = known_product, variant_id = known_variant;
  if (reconcile && product_id.empty()) {
    // The last attempt may have created the product: its tag says.
    shopify::Answer found;
    if (!call(shopify::FindByTagRequest(product.tag), "find", &found)) return o;
    product_id = found.product_id;
    variant_id = found.variant_id;
    if (!product_id.empty()) {
      LOG(WARNING) << LogCtx("outbound.deliver", job.correlation, job.conversation, job.result_id)
                   << "event=shopify_reconciled product=" << product_id << " tag=" << product.tag;
    }
  }
  if (product_id.empty()) {
    const int64_t expires = settings_.now() + settings_.link_ttl.count();
    const auto& photos = JsonMember(job.doc, "photos");
    if (photos.IsArray()) {
      for (const auto& p : photos.GetArray()) {
        std::string stored = JsonStr(p, "stored_name");
        if (stored.empty()) continue;
        product.media.emplace_back(
            MediaLink(settings_.media_base_url, settings_.link_secret, stored, expires),
            product.title);
      }
    }
    shopify::Answer created;
    if (!call(shopify::ProductCreateRequest(product), "create", &created)) return o;
    product_id = created.product_id;
    variant_id = created.variant_id;
    if (product_id.empty()) {
      o.kind = Outcome::Kind::kUncertain;
      o.error = "create: no product in the answer";
      return o;
    }
    LOG(INFO) << LogCtx("outbound.deliver", job.correlation, job.conversation, job.result_id)
              << "event=shopify_product_created product=" << product_id << " tag=" << product.tag;
  }
  if (product_id != known_product) {
    Status s = db_.Exec(kExternalId, {job.id, product_id, variant_id}).status();
    if (!s.ok())
      LOG(WARNING) << LogCtx("outbound.deliver", job.correlation, job.conversation, job.result_id)
                   << "event=external_id_not_recorded product=" << product_id
                   << " error=" << s.ToString();
  }
  o.external_id = product_id;
  if (!product.price.empty() && !variant_id.empty()) {
    shopify::Answer priced;  // setting a price twice is harmless
    if (!call(shopify::PriceUpdateRequest(product_id, variant_id, product.price), "price",
              &priced)) {
      if (o.kind == Outcome::Kind::kUncertain)
        o.kind = Outcome::Kind::kRetry;  // the product exists: found by tag
      return o;
    }
  }
  o.kind = Outcome::Kind::kDelivered;
  return o;
}

Deliverer::Outcome Deliverer::Chatwoot(const Sink& sink, const Job& job, bool reconcile) {
  const chatwoot::Attempt a = chatwoot::Deliver(db_, sink, job.command, reconcile);
  Outcome o;
  static constexpr Outcome::Kind kKinds[] = {Outcome::Kind::kDelivered, Outcome::Kind::kRetry,
                                             Outcome::Kind::kUncertain, Outcome::Kind::kPermanent};
  o.kind = kKinds[static_cast<int>(a.kind)];
  o.status_code = a.status_code;
  o.response = a.response;
  o.error = a.error;
  o.external_id = a.external_id;
  o.retry_after_ms = a.retry_after_ms;
  return o;
}

Disposition Deliverer::RecordDelivered(const Job& job, const Delivery& d, int status_code,
                                       const std::string& external_id) {
  const LogCtx ctx("outbound.deliver", job.correlation, job.conversation, job.result_id);
  const std::optional<std::string> code =
      status_code ? std::optional<std::string>(std::to_string(status_code)) : std::nullopt;
  const std::optional<std::string> made =
      external_id.empty() ? std::nullopt : std::optional<std::string>(external_id);
  auto recorded = db_.Exec(kDelivered, {job.result_id, job.sink, code, made});
  if (recorded.ok()) {
    // Nothing changed: recorded already (a duplicate of the command recorded it first), or no such
    // row (the database lost it): the sink has the result either way.
    if (recorded->empty()) LOG(INFO) << ctx << "event=delivery_record_unchanged sink=" << job.sink;
    return Disposition::Ack();
  }
  const Status s = recorded.status();
  // Retried on its own through the delay tiers (a failed record is no failed attempt: the row's
  // attempts and schedule stay as they are); after record_attempts it is parked, and a replay
  // finishes the record.
  int tries = std::atoi(d.Header(kRecordAttemptsHeader).c_str());
  tries = std::max(tries, 0) + 1;
  const std::string answer = (status_code ? "HTTP " + std::to_string(status_code) : "done") +
                             (external_id.empty() ? "" : ", made " + external_id);
  Disposition next;
  if (tries >= settings_.record_attempts) {
    Delivered(job.sink, "record_parked").Inc();
    LOG(ERROR) << ctx << "event=delivery_record_parked sink=" << job.sink << " tries=" << tries
               << " error=" << s.ToString();
    next = Disposition::DeadLetter("the sink took the delivery (" + answer +
                                   ") but recording it failed " + std::to_string(tries) +
                                   " times: " + s.ToString() +
                                   "; a replay records it without delivering again");
  } else {
    Delivered(job.sink, "record_retry").Inc();
    LOG(WARNING) << ctx << "event=delivery_record_retry sink=" << job.sink << " tries=" << tries
                 << " error=" << s.ToString();
    next =
        Disposition::Delay("recording the delivery the sink took (" + answer + "): " + s.ToString(),
                           RetryDelayMs(tries, 0));
  }
  next.headers = {{kSinkTookHeader, std::to_string(status_code)},
                  {kSinkMadeHeader, external_id},
                  {kRecordAttemptsHeader, std::to_string(tries)}};
  return next;
}

Disposition Deliverer::Handle(const Delivery& d) {
  LogCtx ctx = CommandContext(d, "outbound.deliver");
  if (auto invalid = RefuseInvalid(d, schemas_, ctx)) return *invalid;
  Job job;
  job.command = d.body;
  job.doc.Parse(d.body.c_str(), d.body.size());
  job.result_id = JsonStr(job.doc, "result_id");
  job.sink = JsonStr(job.doc, "sink");
  job.type = JsonStr(job.doc, "type");
  job.correlation = JsonStr(job.doc, "correlation_id");
  job.conversation = JsonStr(job.doc, "conversation_key");
  ctx = LogCtx("outbound.deliver", job.correlation, job.conversation, job.result_id);
  // 0. The sink took it already (an earlier delivery heard its 2xx and could not record it): only
  // the record is left to write.
  if (const std::string took = d.Header(kSinkTookHeader); !took.empty())
    return RecordDelivered(job, d, std::atoi(took.c_str()), d.Header(kSinkMadeHeader));
  const int64_t completed_at = JsonMember(job.doc, "completed_at").GetInt64();
  auto ins = db_.Exec(kInsert, {job.result_id, job.sink, job.type, job.conversation,
                                job.correlation, job.command, std::to_string(completed_at)});
  if (!ins.ok()) return DispositionFor(ins.status());
  auto row = db_.Exec(kLookup, {job.result_id, job.sink});
  if (!row.ok()) return DispositionFor(row.status());
  if (row->empty()) return Disposition::Retry("delivery row vanished");
  job.id = row->get(0, 0);
  const std::string status = row->get(0, 1);
  const int64_t wait_ms = row->get_int(0, 3);
  const double attempt_age = std::stod(row->get(0, 4));
  if (status == "delivered" || status == "parked" || status == "held") {
    LOG(INFO) << ctx << "event=delivery_settled status=" << status << " sink=" << job.sink;
    Delivered(job.sink, status == "delivered" ? "duplicate" : "settled_before").Inc();
    return Disposition::Ack();  // parked and held ones go again by replay or enable, as a new
                                // command
  }
  if (JsonMember(job.doc, "conversation").IsObject()) {
    auto earlier = db_.Exec(kEarlierDelivery, {JsonStr(job.doc, "dedupe_key")});
    if (!earlier.ok()) return DispositionFor(earlier.status());
    if (!earlier->empty()) {
      Delivered(job.sink, "held_for_order").Inc();
      return Disposition::Delay(
          "waiting for the conversation's earlier delivery " + earlier->get(0, 0),
          std::clamp<int64_t>(earlier->get_int(0, 1) + 50, 250, 5000));
    }
  }
  const Sink* sink = sinks_.Find(job.sink);
  auto hold = [&](const std::string& why) {
    Status s = db_.Exec(kHold, {job.id, why}).status();
    if (!s.ok()) return DispositionFor(s);
    Delivered(job.sink, "held").Inc();
    LOG(WARNING) << ctx << "event=delivery_held sink=" << job.sink << " reason=\"" << why << "\"";
    return Disposition::Ack();
  };
  if (!sink)
    return hold("sink '" + job.sink + "' is not configured (--sinks_file): held until it is");
  auto disabled = db_.Exec(kDisabled, {job.sink});
  if (!disabled.ok()) return DispositionFor(disabled.status());
  if (!disabled->empty())
    return hold("sink '" + job.sink + "' is disabled (" + disabled->get(0, 0) +
                "): held until enabled");
  if (wait_ms > 0) return Disposition::Delay("the next attempt is scheduled later", wait_ms);
  // A Chatwoot attempt makes up to five calls (contact, conversation, message lookup and post).
  const double in_flight_s =
      static_cast<double>(sink->timeout.count()) * (sink->kind == Sink::Kind::kChatwoot ? 5 : 1) +
      5;
  if ((status == "attempting" || status == "uncertain") && attempt_age < in_flight_s) {
    return Disposition::Delay("an attempt is in flight",
                              static_cast<int64_t>((in_flight_s - attempt_age) * 1000) + 1);
  }
  if (sink->kind == Sink::Kind::kShopify) {
    auto wait = throttle_.WaitFor(sink->url, kShopifyCreateCost);
    if (wait.count() > 0)
      return Disposition::Delay("waiting for the store's query-cost bucket", wait.count());
  }
  std::string body;
  if (sink->kind == Sink::Kind::kWebhook) {
    auto b = WebhookBody(job, *sink);
    if (!b.ok() && IsTransient(b.status().code())) {
      // A photo to carry inline could not be read now (media restarting): later, not parked.
      LOG(WARNING) << ctx << "event=delivery_retry reason=\"" << b.status().message() << "\"";
      return Disposition::Delay(b.status().message(), 5000);
    }
    if (!b.ok()) {
      Status s = db_.Exec(kPark, {job.id, std::nullopt, b.status().message()}).status();
      if (!s.ok()) return DispositionFor(s);
      Delivered(job.sink, "parked").Inc();
      LOG(ERROR) << ctx << "event=delivery_parked reason=\"" << b.status().message() << "\"";
      return Disposition::Ack();
    }
    body = *b;
  }
  auto claimed = db_.Exec(kClaim, {job.id, std::to_string(in_flight_s)});
  if (!claimed.ok()) return DispositionFor(claimed.status());
  if (claimed->empty()) return Disposition::Delay("claimed by another attempt", 1000);
  job.attempt = static_cast<int>(claimed->get_int(0, 0));
  const std::string previous = claimed->get(0, 1);
  const bool unknown_before = previous == "attempting" || previous == "uncertain";
  const double search_lag = static_cast<double>(settings_.shopify_search_lag.count());
  if (unknown_before && sink->kind == Sink::Kind::kShopify && attempt_age < search_lag &&
      row->get(0, 5).empty()) {
    // The store's search index lags its writes: a product made by the lost attempt would not be
    // found yet. Give it back the attempt and look later. Best effort: not given back, the claim
    // stays until it is stale (in_flight_s) and the attempt counts; the delay below is the same.
    Status back = db_.Exec(kRetrying, {job.id, previous, std::nullopt,
                                       std::string("waiting to reconcile an unknown outcome"),
                                       std::to_string(search_lag - attempt_age), std::string("1")})
                      .status();
    if (!back.ok()) LOG(WARNING) << ctx << "event=attempt_not_given_back error=" << back.ToString();
    return Disposition::Delay("reconciling an unknown outcome",
                              static_cast<int64_t>((search_lag - attempt_age) * 1000) + 1);
  }
  const double started =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto t0 = std::chrono::steady_clock::now();
  // SSRF, again at each attempt (DNS may have changed since start): refused for good, or retried
  // when the name does not resolve.
  Outcome o;
  Status dest = CheckDestination(sink->url, sink->allow_private);
  if (!dest.ok()) {
    o.kind = dest.code() == Code::kRejected || dest.code() == Code::kInvalidArgument
                 ? Outcome::Kind::kPermanent
                 : Outcome::Kind::kRetry;
    o.error = dest.message();
  } else {
    switch (sink->kind) {
      case Sink::Kind::kWebhook:
        o = Webhook(*sink, job, body);
        break;
      case Sink::Kind::kShopify:
        o = Shopify(*sink, job, unknown_before, row->get(0, 5), row->get(0, 6));
        break;
      case Sink::Kind::kChatwoot:
        o = Chatwoot(*sink, job, unknown_before);
        break;
    }
  }
  const int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  static const char* kNames[] = {"delivered", "retry", "uncertain",
                                 "permanent", "gone",  "throttled"};
  const char* name = kNames[static_cast<int>(o.kind)];
  std::optional<std::string> code =
      o.status_code ? std::optional<std::string>(std::to_string(o.status_code)) : std::nullopt;
  Status s =
      db_.Exec(kRecordAttempt,
               {job.id, std::to_string(job.attempt), std::to_string(started), std::to_string(ms),
                code, o.response.empty() ? std::nullopt : std::optional<std::string>(o.response),
                o.error.empty() ? std::nullopt : std::optional<std::string>(o.error),
                std::string(name)})
          .status();
  if (!s.ok()) LOG(WARNING) << ctx << "event=attempt_not_recorded error=" << s.ToString();
  Delivered(job.sink, name).Inc();
  LOG(INFO) << ctx << "event=delivery_attempt sink=" << job.sink << " attempt=" << job.attempt
            << " outcome=" << name << " status=" << o.status_code << " ms=" << ms
            << (o.error.empty() ? "" : " error=\"" + o.error + "\"");
  switch (o.kind) {
    case Outcome::Kind::kDelivered:
      return RecordDelivered(job, d, o.status_code, o.external_id);
    case Outcome::Kind::kGone:
      s = db_.Exec(kDisable, {job.sink, "410 Gone from " + sink->url + " for " + job.result_id})
              .status();
      if (s.ok())
        s = db_.Exec(kHold, {job.id, o.error + ": sink disabled, held until enabled"}).status();
      LOG(ERROR) << ctx << "event=sink_disabled sink=" << job.sink << " reason=410";
      return s.ok() ? Disposition::Ack() : DispositionFor(s);
    case Outcome::Kind::kPermanent:
      s = db_.Exec(kPark, {job.id, code, o.error}).status();
      Delivered(job.sink, "parked").Inc();
      LOG(ERROR) << ctx << "event=delivery_parked sink=" << job.sink << " reason=\"" << o.error
                 << "\"";
      return s.ok() ? Disposition::Ack() : DispositionFor(s);
    case Outcome::Kind::kThrottled: {
      // The store's bucket, not a failure: the attempt is given back.
      s = db_.Exec(kRetrying,
                   {job.id, std::string("retrying"), code, o.error,
                    std::to_string(static_cast<double>(o.retry_after_ms) / 1000), std::string("1")})
              .status();
      return s.ok() ? Disposition::Delay("throttled by the store", o.retry_after_ms)
                    : DispositionFor(s);
    }
    case Outcome::Kind::kRetry:
    case Outcome::Kind::kUncertain:
      break;
  }
  if (static_cast<size_t>(job.attempt) >= settings_.schedule.size()) {
    std::string why = "exhausted after " + std::to_string(job.attempt) + " attempts: " + o.error;
    s = db_.Exec(kPark, {job.id, code, why}).status();
    Delivered(job.sink, "parked").Inc();
    LOG(ERROR) << ctx << "event=delivery_parked sink=" << job.sink << " reason=\"" << why << "\"";
    return s.ok() ? Disposition::Ack() : DispositionFor(s);
  }
  int64_t delay = std::max<int64_t>(settings_.schedule[job.attempt].count(), o.retry_after_ms);
  if (o.kind == Outcome::Kind::kUncertain && sink->kind == Sink::Kind::kShopify) {
    delay = std::max<int64_t>(delay, settings_.shopify_search_lag.count() * 1000);
  }
  s = db_.Exec(kRetrying,
               {job.id, std::string(o.kind == Outcome::Kind::kUncertain ? "uncertain" : "retrying"),
                code, o.error, std::to_string(static_cast<double>(delay) / 1000), std::string("0")})
          .status();
  if (!s.ok()) return DispositionFor(s);
  if (delay <= 0) return Disposition::Delay("retried at once", 0);
  return Disposition::Delay("attempt " + std::to_string(job.attempt + 1) + " is scheduled", delay);
}

}  // namespace convoy::outbound
