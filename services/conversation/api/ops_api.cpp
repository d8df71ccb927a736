#include "api/ops_api.h"

#include <glog/logging.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>

#include "api/forward.h"
#include "convoy/log.h"
#include "convoy/pg.h"
#include "convoy/queue_waits.h"
#include "convoy/rapidjson_util.h"
#include "convoy/rfc3339.h"
#include "convoy/topology.h"
#include "convoy/url.h"
#include "store/transcript.h"

namespace convoy::conversation {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr size_t kDefaultLimit = 100, kMaxLimit = 1000;
constexpr size_t kDryRunIds = 20;       // ids a dry run names
constexpr size_t kMaxBodyShown = 4000;  // bytes of a payload a list shows

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

HttpResponse Unavailable(const Status& s) { return JsonError(503, "unavailable", s.message()); }

// A filter as it came (query parameters, or the members of a body's "filter"), checked.
struct ParsedFilter {
  ctl::DlqFilter filter;
  std::string json;  // the filter as the audit log records it
};

Result<ParsedFilter> ParseFilter(const std::map<std::string, std::string>& in, bool allow_limit) {
  ParsedFilter p;
  std::string json = "{";
  auto note = [&](const std::string& k, const std::string& v) {
    json += (json.size() > 1 ? "," : "") + JsonQuote(k) + ":" + JsonQuote(v);
  };
  auto bad = [](const std::string& why) { return Status(Code::kInvalidArgument, why); };
  for (const auto& [k, v] : in) {
    if (v.empty()) continue;
    if (k == "queue") {
      const auto& queues = ConvoyTopology().work_queues;
      if (std::find(queues.begin(), queues.end(), v) == queues.end()) {
        std::string known;
        for (const auto& q : queues) known += (known.empty() ? "" : ", ") + q;
        return bad("queue is one of " + known);
      }
      p.filter.queue = v;
    } else if (k == "reason") {
      if (v.size() > 200) return bad("reason is at most 200 characters");
      p.filter.reason = v;
    } else if (k == "code") {
      if (v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos)
        return bad("code is a number (a Graph error.code)");
      p.filter.code = v;
    } else if (k == "q") {
      if (v.size() < 3 || v.size() > 200)
        return bad("q is 3 to 200 characters of the message's content");
      p.filter.content = v;
    } else if (k == "since" || k == "until") {
      const double t = ParseRfc3339(v);
      if (t <= 0) return bad(k + " is a time such as 2026-12-07T13:00:00Z");
      (k == "since" ? p.filter.since : p.filter.until) = static_cast<int64_t>(t);
    } else if (k == "id") {
      if (v.size() > 255) return bad("id is at most 255 characters");
      p.filter.id = v;
    } else if (k == "limit" && allow_limit) {
      if (v.size() > 4 || v.find_first_not_of("0123456789") != std::string::npos ||
          std::stoul(v) == 0 || std::stoul(v) > kMaxLimit) {
        return bad("limit is 1 to " + std::to_string(kMaxLimit));
      }
      p.filter.limit = std::stoul(v);
      continue;  // how many are shown, not which
    } else {
      return bad("unknown filter member \"" + k.substr(0, 40) +
                 "\" (queue, reason, code, q, since, until, id)");
    }
    note(k, v);
  }
  if (p.filter.since > 0 && p.filter.until > 0 && p.filter.until <= p.filter.since)
    return bad("until is after since");
  p.json = json + "}";
  return p;
}

std::string MaskKey(const std::string& key) {
  const size_t colon = key.find(':');
  if (colon == std::string::npos) return MaskPersonal(key, false);
  return key.substr(0, colon + 1) + MaskPersonal(key.substr(colon + 1), false);
}

void MaskStrings(rapidjson::Value& v, rapidjson::Document::AllocatorType& a) {
  if (v.IsString()) {
    const std::string masked = MaskPersonal(std::string(v.GetString(), v.GetStringLength()), false);
    v.SetString(masked.c_str(), static_cast<rapidjson::SizeType>(masked.size()), a);
  } else if (v.IsArray()) {
    for (auto& x : v.GetArray()) MaskStrings(x, a);
  } else if (v.IsObject()) {
    for (auto& m : v.GetObject()) MaskStrings(m.value, a);
  }
}

// Cut at `max` bytes, never inside a UTF-8 sequence.
std::string Cut(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "...";
}

// As `convoyctl dlq list --json` shows it, with its body (cut); a viewer's masked.
std::string MessageJson(ctl::ParkedMessage m, bool mask) {
  if (mask) {
    m.conversation_key = MaskKey(m.conversation_key);
    m.body = MaskPayload(m.body);
  }
  m.body = Cut(m.body, kMaxBodyShown);
  return ctl::ParkedJson(m, false, true);
}

// GET /v1/ops/parked
HttpResponse ListParkedApi(const HttpRequest& r, const Caller& caller,
                           const OpsSettings& settings) {
  auto parsed = ParseFilter(r.query, true);
  if (!parsed.ok()) return JsonError(400, "invalid_argument", parsed.status().message());
  const bool mask = !SeesPersonalData(caller.role);
  if (mask && !parsed->filter.content.empty()) {
    return JsonError(
        403, "forbidden",
        "a viewer may not search parked messages by content (it is masked to a viewer)");
  }
  const size_t limit = parsed->filter.limit > 0 ? parsed->filter.limit : kDefaultLimit;
  parsed->filter.limit = 0;  // count them all, show the first `limit`
  std::lock_guard<std::mutex> lock(*settings.sweeping);
  auto list = ctl::ListParked(*settings.broker, parsed->filter);
  if (!list.ok()) return Unavailable(list.status());
  std::string out = "{\"count\":" + std::to_string(list->size()) + ",\"messages\":[";
  for (size_t i = 0; i < list->size() && i < limit; ++i)
    out += (i ? "," : "") + MessageJson((*list)[i], mask);
  return JsonResponse(200, out + "]}");
}

// POST /v1/ops/parked/replay and /purge.
HttpResponse ActApi(const HttpRequest& r, bool purge, const OpsSettings& settings,
                    AuditEntry* audit) {
  rapidjson::Document d;
  d.Parse(r.body.c_str(), r.body.size());
  if (d.HasParseError() || !d.IsObject())
    return JsonError(400, "invalid_json", "the body is a JSON object");
  for (const auto& m : d.GetObject()) {
    const std::string k = m.name.GetString();
    if (k != "filter" && k != "dry_run" && k != "confirm" && k != "reason") {
      return JsonError(
          400, "invalid_argument",
          "unknown member \"" + k.substr(0, 40) + "\" (filter, dry_run, confirm, reason)");
    }
  }
  std::map<std::string, std::string> in;
  const auto& f = JsonMember(d, "filter");
  if (!f.IsNull() && !f.IsObject())
    return JsonError(400, "invalid_argument", "filter is an object");
  if (f.IsObject()) {
    for (const auto& m : f.GetObject()) {
      if (!m.value.IsString()) {
        return JsonError(400, "invalid_argument",
                         std::string("filter.") + m.name.GetString() + " is a string");
      }
      in[m.name.GetString()] = std::string(m.value.GetString(), m.value.GetStringLength());
    }
  }
  auto parsed = ParseFilter(in, false);
  if (!parsed.ok()) return JsonError(400, "invalid_argument", parsed.status().message());
  if (audit) audit->filter_json = parsed->json;
  const auto& dry = JsonMember(d, "dry_run");
  if (!dry.IsNull() && !dry.IsBool())
    return JsonError(400, "invalid_argument", "dry_run is true or false");
  const bool dry_run = dry.IsBool() && dry.GetBool();
  const std::string reason = JsonStr(d, "reason");
  const auto& confirm_v = JsonMember(d, "confirm");
  std::string confirm;
  if (confirm_v.IsString())
    confirm.assign(confirm_v.GetString(), confirm_v.GetStringLength());
  else if (confirm_v.IsUint64())
    confirm = std::to_string(confirm_v.GetUint64());
  else if (!confirm_v.IsNull())
    return JsonError(400, "invalid_argument", "confirm is the count the dry run found");
  if (!dry_run) {
    if (purge && reason.size() < 3) {
      return JsonError(400, "reason_required",
                       "a purge deletes parked messages for good: say why (reason, 3+ characters)");
    }
    if (confirm.empty()) {
      return JsonError(400, "confirm_required",
                       "confirm with the count a dry run of the same filter found");
    }
  }
  std::lock_guard<std::mutex> lock(*settings.sweeping);
  auto list = ctl::ListParked(*settings.broker, parsed->filter);
  if (!list.ok()) return Unavailable(list.status());
  const size_t count = list->size();
  if (dry_run) {
    if (audit) audit->count = static_cast<int64_t>(count);
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    w.Key("dry_run");
    w.Bool(true);
    w.Key("count");
    w.Uint64(count);
    w.Key("ids");
    w.StartArray();
    for (size_t i = 0; i < count && i < kDryRunIds; ++i) w.String((*list)[i].id);
    w.EndArray();
    w.EndObject();
    return JsonResponse(200, b.GetString());
  }
  if (confirm != std::to_string(count)) {
    if (audit) audit->count = 0;
    return JsonError(409, "count_changed",
                     "the filter matches " + std::to_string(count) +
                         " parked message(s) now, not " + Cut(confirm, 20) + ": nothing was " +
                         (purge ? "purged" : "replayed") + "; run the dry run again");
  }
  size_t done = 0;
  if (count > 0) {
    ctl::DlqFilter upto = parsed->filter;
    upto.limit = count;  // never more than was confirmed
    auto n = purge ? ctl::PurgeParked(*settings.broker, upto)
                   : ctl::ReplayParked(*settings.broker, upto, false);
    if (!n.ok()) return Unavailable(n.status());
    done = *n;
  }
  if (audit) audit->count = static_cast<int64_t>(done);
  LOG(INFO) << "service=conversation handler=ops event="
            << (purge ? "parked_purged" : "parked_replayed") << " count=" << done
            << " filter_members=" << in.size();
  return JsonResponse(200, std::string("{\"") + (purge ? "purged" : "replayed") +
                               "\":" + std::to_string(done) + "}");
}

HttpResponse QueuesApi(const OpsSettings& settings) {
  // The consumers' queue waits first, outside the sweeping lock (a slow database holds no replay).
  std::map<std::string, int64_t> wait_ages;
  std::string waits_error;
  {
    auto db = PgConnection::Connect(settings.pg_dsn);
    auto read =
        db.ok() ? ReadQueueWaitAges(**db) : Result<std::map<std::string, int64_t>>(db.status());
    if (read.ok()) {
      wait_ages = std::move(*read);
    } else {
      // Depths still answer; the ages say why they are missing.
      waits_error = read.status().message();
      LOG_EVERY_N(WARNING, 10) << "service=conversation handler=ops event=queue_waits_unread error="
                               << read.status().ToString();
    }
  }
  std::lock_guard<std::mutex> lock(*settings.sweeping);
  auto depths = ctl::QueueDepths(*settings.broker);
  if (!depths.ok()) return Unavailable(depths.status());
  // The oldest parked message of each queue, from the parked messages themselves. A work queue's
  // is bounded by what its consumers took (convoy/queue_waits.h): looking at a quorum queue's head
  // would count as a delivery.
  std::map<std::string, int64_t> oldest;
  auto parked = ctl::ListParked(*settings.broker, {});
  if (!parked.ok()) return Unavailable(parked.status());
  for (const auto& m : *parked) {
    if (m.parked_at <= 0) continue;
    auto [it, fresh] = oldest.emplace(m.queue, m.parked_at);
    if (!fresh) it->second = std::min(it->second, m.parked_at);
  }
  const int64_t now = Now();
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("queues");
  w.StartArray();
  for (const auto& q : *depths) {
    w.StartObject();
    w.Key("queue");
    w.String(q.queue);
    w.Key("ready");
    w.Uint64(q.ready);
    w.Key("consumers");
    w.Uint64(q.consumers);
    w.Key("partitions");
    w.Int(q.partitions);
    w.Key("parked");
    w.Uint64(q.parked);
    auto it = oldest.find(q.queue);
    w.Key("oldest_parked_at");
    if (it != oldest.end())
      w.String(Rfc3339(it->second));
    else
      w.Null();
    w.Key("oldest_parked_age_seconds");
    if (it != oldest.end())
      w.Int64(now - it->second);
    else
      w.Null();
    // At most this old (null: not known, see oldest_ready_unknown).
    std::optional<int64_t> ready_age;
    if (waits_error.empty()) ready_age = OldestReadyAgeSeconds(q.parts, wait_ages);
    w.Key("oldest_ready_age_seconds");
    if (ready_age)
      w.Int64(*ready_age);
    else
      w.Null();
    if (!ready_age) {
      w.Key("oldest_ready_unknown");
      w.String(!waits_error.empty() ? "the consumers' queue waits could not be read (the "
                                      "conversation service's log says why)"
                                    : "no consumer has taken a message from it yet");
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("links");
  w.StartObject();
  if (!settings.grafana_url.empty()) {
    w.Key("grafana");
    w.String(settings.grafana_url);
  }
  if (!settings.rabbitmq_management_url.empty()) {
    w.Key("rabbitmq_management");
    w.String(settings.rabbitmq_management_url);
  }
  w.EndObject();
  w.EndObject();
  return JsonResponse(200, b.GetString());
}

HttpResponse HealthApi(const OpsSettings& settings) {
  return JsonResponse(200, ctl::HealthJson(ctl::CheckHealth(
                               settings.pg_dsn, settings.broker ? &*settings.broker : nullptr,
                               settings.thresholds)));
}

// /v1/deliveries*: outbound's own API answers, checking the caller's token (or the vouch for a
// caller the proxy signed in) itself (forward.h).
HttpResponse ForwardDeliveries(const HttpRequest& r, const Caller& caller,
                               const OpsSettings& settings, AuditEntry* audit) {
  HttpResponse answer = Forward(
      r, {settings.outbound_admin_url, "outbound", "--outbound_admin_url", settings.forward_secret},
      caller);
  if (audit && answer.status / 100 == 2) {
    rapidjson::Document d;
    d.Parse(answer.body.c_str(), answer.body.size());
    const auto& n = JsonMember(d, "replayed");
    if (n.IsInt64()) audit->count = n.GetInt64();
    audit->filter_json = r.body.size() <= 2000 ? r.body : std::string("{}");
  }
  return answer;
}

}  // namespace

std::string MaskPayload(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  if (d.HasParseError()) return MaskPersonal(body, false);
  MaskStrings(d, d.GetAllocator());
  rapidjson::StringBuffer out;
  Writer w(out);
  d.Accept(w);
  return out.GetString();
}

bool IsOpsRoute(const std::string& route) {
  return route.rfind("/v1/ops/", 0) == 0 || route == "/v1/deliveries" ||
         route == "/v1/deliveries/replay";
}

HttpResponse HandleOpsApi(const HttpRequest& r, const std::string& route, const Caller& caller,
                          const OpsSettings& settings, AuditEntry* audit) {
  if (route == "/v1/deliveries" || route == "/v1/deliveries/replay")
    return ForwardDeliveries(r, caller, settings, audit);
  if (route == "/v1/ops/health") return HealthApi(settings);
  if (!settings.broker) {
    return Unavailable(Status(Code::kUnavailable,
                              "parked messages are not reachable from here: set --ops_amqp_url"));
  }
  if (route == "/v1/ops/queues") return QueuesApi(settings);
  if (route == "/v1/ops/parked") return ListParkedApi(r, caller, settings);
  if (route == "/v1/ops/parked/replay") return ActApi(r, false, settings, audit);
  if (route == "/v1/ops/parked/purge") return ActApi(r, true, settings, audit);
  return JsonError(404, "not_found", "no route " + route);
}

}  // namespace convoy::conversation
