#include "ctl.h"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <istream>
#include <map>
#include <ostream>
#include <sstream>

#include "convoy/amqp_admin.h"
#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/pg.h"
#include "convoy/queue_waits.h"
#include "convoy/rapidjson_util.h"
#include "convoy/rfc3339.h"
#include "convoy/tokens.h"
#include "convoy/topology.h"

namespace convoy::ctl {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Iso(int64_t t) { return t > 0 ? Rfc3339(t) : ""; }

std::string Age(int64_t seconds) {
  if (seconds < 0) return "?";
  if (seconds < 120) return std::to_string(seconds) + "s";
  if (seconds < 7200) return std::to_string(seconds / 60) + "m";
  if (seconds < 172800) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

std::vector<std::string> Queues(const std::string& only) {
  if (!only.empty()) return {only};
  return ConvoyTopology().work_queues;
}

ParkedMessage FromDelivery(const std::string& work_queue, const Delivery& d) {
  ParkedMessage m;
  m.id = d.message_id.empty() ? d.Header(headers::kDedupeKey) : d.message_id;
  m.queue =
      d.Header(headers::kOriginalQueue).empty() ? work_queue : d.Header(headers::kOriginalQueue);
  m.last_reason = d.Header(headers::kDeathReason);
  if (m.last_reason.empty()) m.last_reason = d.Header("x-last-error");
  if (m.last_reason.empty())
    m.last_reason = "parked by the broker (delivery limit: its consumer kept failing on it)";
  m.first_reason = d.Header("x-first-error").empty() ? m.last_reason : d.Header("x-first-error");
  m.attempts = d.attempt;
  m.replays = std::atoi(d.Header("x-replays").c_str());
  m.parked_at = std::atoll(d.Header("x-parked-at").c_str());
  m.error_code = d.Header("x-last-error-code");
  m.correlation_id = d.Header(headers::kCorrelationId);
  m.conversation_key = d.Header(headers::kConversationKey);
  m.body = d.body;
  for (const auto& [k, v] : d.headers) m.headers.emplace_back(k, v);
  m.headers.emplace_back(headers::kAttempt, std::to_string(d.attempt));
  std::sort(m.headers.begin(), m.headers.end());
  return m;
}

bool Matches(const DlqFilter& f, const ParkedMessage& m) {
  if (!f.id.empty() && m.id != f.id) return false;
  if (!f.reason.empty()) {
    const std::string r = Lower(f.reason);
    if (Lower(m.last_reason).find(r) == std::string::npos &&
        Lower(m.first_reason).find(r) == std::string::npos)
      return false;
  }
  if (f.since > 0 && m.parked_at < f.since) return false;
  if (f.until > 0 && m.parked_at >= f.until) return false;
  if (!f.code.empty() && m.error_code != f.code) return false;
  if (!f.content.empty() && Lower(m.body).find(Lower(f.content)) == std::string::npos) return false;
  return true;
}

// convoyctl's broker connection: the URL, and from the environment what a deployment keeps apart
// from it: the ops user's credentials (CONVOY_AMQP_USERNAME / CONVOY_AMQP_PASSWORD, the Secret
// convoy-ops-user-credentials) and the broker's CA for amqps:// (CONVOY_AMQP_CA_FILE, with
// CONVOY_AMQP_CERT_FILE / CONVOY_AMQP_KEY_FILE for a client certificate).
AmqpOptions CtlAmqp(const std::string& amqp_url) {
  AmqpOptions o{amqp_url, "convoyctl"};
  o.declare_topology = false;
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v ? v : "");
  };
  o.username = env("CONVOY_AMQP_USERNAME");
  o.password = env("CONVOY_AMQP_PASSWORD");
  o.ca_file = env("CONVOY_AMQP_CA_FILE");
  o.cert_file = env("CONVOY_AMQP_CERT_FILE");
  o.key_file = env("CONVOY_AMQP_KEY_FILE");
  return o;
}

Status OpenAdmin(AmqpAdmin& admin, const AmqpOptions& broker) {
  AmqpOptions o = broker;
  o.declare_topology = false;
  Status s = ValidateAmqpOptions(o);
  return s.ok() ? admin.Open(o) : s;
}

// Sweeps every parking queue the filter names; decide sees each match (and the count so far).
Result<size_t> SweepParked(const AmqpOptions& broker, const DlqFilter& f,
                           const std::function<AmqpAdmin::SweepAction(
                               const ParkedMessage&, const Delivery&, AmqpMessage*)>& decide) {
  AmqpAdmin admin;
  Status s = OpenAdmin(admin, broker);
  if (!s.ok()) return s;
  size_t matched = 0;
  for (const auto& q : Queues(f.queue)) {
    auto seen = admin.Sweep(q + ".dlq", 1000000, [&](const Delivery& d, AmqpMessage* copy) {
      ParkedMessage m = FromDelivery(q, d);
      if (!Matches(f, m) || (f.limit > 0 && matched >= f.limit))
        return AmqpAdmin::SweepAction::kKeep;
      ++matched;
      return decide(m, d, copy);
    });
    if (!seen.ok()) return Status(seen.status().code(), q + ".dlq: " + seen.status().message());
  }
  return matched;
}

void WriteParked(Writer& w, const ParkedMessage& m, bool headers, bool body) {
  w.StartObject();
  w.Key("id");
  w.String(m.id);
  w.Key("queue");
  w.String(m.queue);
  w.Key("first_reason");
  w.String(m.first_reason);
  w.Key("last_reason");
  w.String(m.last_reason);
  w.Key("attempts");
  w.Int(m.attempts);
  w.Key("replays");
  w.Int(m.replays);
  w.Key("parked_at");
  w.String(Iso(m.parked_at));
  w.Key("age_seconds");
  w.Int64(m.parked_at > 0 ? Now() - m.parked_at : -1);
  w.Key("correlation_id");
  w.String(m.correlation_id);
  w.Key("conversation_key");
  w.String(m.conversation_key);
  w.Key("error_code");
  w.String(m.error_code);
  if (headers) {
    w.Key("headers");
    w.StartObject();
    for (const auto& [k, v] : m.headers) {
      w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
      w.String(v);
    }
    w.EndObject();
  }
  if (body) {
    w.Key("body");
    w.String(m.body);
  }
  w.EndObject();
}

void WriteParked(Writer& w, const ParkedMessage& m, bool full) { WriteParked(w, m, full, full); }

int Unavailable(std::ostream& err, const std::string& what, const Status& s) {
  err << "convoyctl: " << what << ": " << s.ToString() << "\n";
  return kFailed;
}

Result<std::unique_ptr<PgConnection>> Db(const Options& o) {
  if (o.pg_dsn.empty())
    return Status(Code::kInvalidArgument, "no database: pass --pg_dsn or set CONVOY_PG_DSN");
  return PgConnection::Connect(o.pg_dsn);
}

std::string Pretty(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  if (d.HasParseError()) return json;
  rapidjson::StringBuffer b;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(b);
  w.SetIndent(' ', 2);
  d.Accept(w);
  return std::string(b.GetString(), b.GetSize());
}

}  // namespace

int64_t ParseDuration(const std::string& text) {
  if (text.empty()) return -1;
  size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (...) {
    return -1;
  }
  if (n < 0) return -1;
  const std::string unit = text.substr(used);
  if (unit.empty() || unit == "s") return n;
  if (unit == "m") return n * 60;
  if (unit == "h") return n * 3600;
  if (unit == "d") return n * 86400;
  return -1;
}

std::string ParkedJson(const ParkedMessage& m, bool headers, bool body) {
  rapidjson::StringBuffer b;
  Writer w(b);
  WriteParked(w, m, headers, body);
  return std::string(b.GetString(), b.GetSize());
}

Result<std::vector<ParkedMessage>> ListParked(const std::string& amqp_url,
                                              const DlqFilter& filter) {
  return ListParked(CtlAmqp(amqp_url), filter);
}

Result<size_t> ReplayParked(const std::string& amqp_url, const DlqFilter& filter, bool dry_run) {
  return ReplayParked(CtlAmqp(amqp_url), filter, dry_run);
}

Result<size_t> PurgeParked(const std::string& amqp_url, const DlqFilter& filter) {
  return PurgeParked(CtlAmqp(amqp_url), filter);
}

Result<std::vector<ParkedMessage>> ListParked(const AmqpOptions& broker, const DlqFilter& filter) {
  std::vector<ParkedMessage> out;
  auto n = SweepParked(broker, filter, [&](const ParkedMessage& m, const Delivery&, AmqpMessage*) {
    out.push_back(m);
    return AmqpAdmin::SweepAction::kKeep;
  });
  if (!n.ok()) return n.status();
  return out;
}

Result<size_t> ReplayParked(const AmqpOptions& broker, const DlqFilter& filter, bool dry_run) {
  const std::string now = Iso(Now());
  return SweepParked(
      broker, filter, [&](const ParkedMessage& m, const Delivery& d, AmqpMessage* copy) {
        if (dry_run) return AmqpAdmin::SweepAction::kKeep;
        copy->exchange = "";  // the default exchange: straight to the work queue
        copy->routing_key = m.queue;
        if (const PartitionedQueue* p = FindPartitioned(m.queue)) {
          copy->exchange =
              p->exchange;  // to its conversation's partition (by its x-conversation-key)
        }
        copy->body = d.body;
        copy->message_id = d.message_id;
        copy->headers = d.headers;
        for (const char* h : {headers::kDeathReason, "x-last-error", "x-parked-at", "x-first-error",
                              headers::kAttempt, "x-record-attempts"}) {
          copy->headers.erase(h);
        }
        // It waits in its work queue from now (convoy/queue_waits.h).
        copy->headers[headers::kRequeuedAt] = std::to_string(UnixMillisNow());
        // A fresh attempt count; what happened before stays readable.
        std::string history = d.Header("x-replay-history");
        history += (history.empty() ? "" : " | ") + now + " replayed after " +
                   std::to_string(m.attempts) + " attempt(s): " + m.last_reason;
        if (history.size() > 4000) history = "..." + history.substr(history.size() - 3997);
        copy->headers["x-replay-history"] = history;
        copy->headers["x-replays"] = std::to_string(m.replays + 1);
        return AmqpAdmin::SweepAction::kMove;
      });
}

Result<size_t> PurgeParked(const AmqpOptions& broker, const DlqFilter& filter) {
  return SweepParked(broker, filter, [](const ParkedMessage&, const Delivery&, AmqpMessage*) {
    return AmqpAdmin::SweepAction::kDrop;
  });
}

Result<std::vector<QueueDepth>> QueueDepths(const AmqpOptions& broker) {
  AmqpAdmin admin;
  Status s = OpenAdmin(admin, broker);
  if (!s.ok()) return s;
  std::vector<QueueDepth> out;
  for (const auto& q : ConvoyTopology().work_queues) {
    QueueDepth d;
    d.queue = q;
    if (FindPartitioned(q) != nullptr) {
      auto n = admin.CountPartitions(q);
      if (!n.ok()) return Status(n.status().code(), q + ": " + n.status().message());
      d.partitions = *n;
    }
    for (int p = 0; p < std::max(d.partitions, 1); ++p) {
      const std::string name = d.partitions > 0 ? q + "." + std::to_string(p) : q;
      auto st = admin.Inspect(name);
      if (!st.ok()) return Status(st.status().code(), name + ": " + st.status().message());
      d.ready += st->messages;
      d.consumers += st->consumers;
      d.parts.emplace_back(name, st->messages);
    }
    auto parked = admin.Inspect(q + ".dlq");
    if (!parked.ok())
      return Status(parked.status().code(), q + ".dlq: " + parked.status().message());
    d.parked = parked->messages;
    out.push_back(d);
  }
  return out;
}

int DlqList(const Options& o, const DlqFilter& f, std::ostream& out, std::ostream& err) {
  auto list = ListParked(o.amqp_url, f);
  if (!list.ok()) return Unavailable(err, "dlq list", list.status());
  if (o.json) {
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartArray();
    for (const auto& m : *list) WriteParked(w, m, false);
    w.EndArray();
    out << b.GetString() << "\n";
    return kOk;
  }
  for (const auto& m : *list) {
    out << m.id << "  " << m.queue << "  attempts=" << m.attempts
        << "  age=" << (m.parked_at > 0 ? Age(Now() - m.parked_at) : "?")
        << (m.replays > 0 ? "  replays=" + std::to_string(m.replays) : "")
        << "  corr=" << m.correlation_id << "\n"
        << "    last:  " << m.last_reason << "\n";
    if (m.first_reason != m.last_reason) out << "    first: " << m.first_reason << "\n";
  }
  out << list->size() << " parked message(s)\n";
  return kOk;
}

int DlqShow(const Options& o, const DlqFilter& f, std::ostream& out, std::ostream& err) {
  auto list = ListParked(o.amqp_url, f);
  if (!list.ok()) return Unavailable(err, "dlq show", list.status());
  if (list->empty()) {
    err << "convoyctl: no parked message with id " << f.id
        << (f.queue.empty() ? "" : " in " + f.queue + ".dlq") << "\n";
    return kNotFound;
  }
  for (const auto& m : *list) {
    if (o.json) {
      rapidjson::StringBuffer b;
      Writer w(b);
      WriteParked(w, m, true);
      out << b.GetString() << "\n";
      continue;
    }
    out << "id:           " << m.id << "\nqueue:        " << m.queue
        << "\nattempts:     " << m.attempts << "\nreplays:      " << m.replays
        << "\nparked at:    " << (m.parked_at > 0 ? Iso(m.parked_at) : "(by the broker)")
        << "\nfirst reason: " << m.first_reason << "\nlast reason:  " << m.last_reason
        << "\nheaders:\n";
    for (const auto& [k, v] : m.headers) out << "  " << k << ": " << v << "\n";
    out << "body:\n" << Pretty(m.body) << "\n";
  }
  return kOk;
}

int DlqReplay(const Options& o, const DlqFilter& f, bool dry_run, std::ostream& out,
              std::ostream& err) {
  if (dry_run) {
    auto list = ListParked(o.amqp_url, f);
    if (!list.ok()) return Unavailable(err, "dlq replay", list.status());
    for (const auto& m : *list)
      out << "would replay " << m.id << " -> " << m.queue << "  (" << m.last_reason << ")\n";
    out << list->size() << " message(s) would be replayed (dry run: nothing moved)\n";
    return kOk;
  }
  auto n = ReplayParked(o.amqp_url, f, false);
  if (!n.ok()) return Unavailable(err, "dlq replay", n.status());
  if (o.json) {
    out << R"({"replayed":)" << *n << "}\n";
  } else {
    out << *n
        << " message(s) replayed to their work queues (fresh attempt count; x-replay-history keeps "
           "the past)\n";
  }
  return kOk;
}

int DlqPurge(const Options& o, const DlqFilter& f, bool yes, std::ostream& out, std::ostream& err) {
  if (!yes) {
    err << "convoyctl: dlq purge deletes parked messages for good: confirm with --yes\n";
    return kUsage;
  }
  auto n = PurgeParked(o.amqp_url, f);
  if (!n.ok()) return Unavailable(err, "dlq purge", n.status());
  if (o.json) {
    out << R"({"purged":)" << *n << "}\n";
  } else {
    out << *n << " parked message(s) deleted\n";
  }
  return kOk;
}

int ConversationShow(const Options& o, const std::string& who, const std::string& phone_number_id,
                     int limit, std::ostream& out, std::ostream& err) {
  auto db = Db(o);
  if (!db.ok()) return Unavailable(err, "conversation show", db.status());
  PgConnection& c = **db;
  std::string key = who;
  if (who.find(':') == std::string::npos) {
    auto keys = c.Exec(
        "SELECT DISTINCT conversation_key FROM (SELECT conversation_key FROM identities WHERE "
        "identity = $1 AND "
        "($2 = '' OR phone_number_id = $2) UNION SELECT conversation_key FROM conversations WHERE "
        "(wa_id = $1 OR "
        "user_id = $1) AND ($2 = '' OR phone_number_id = $2)) k ORDER BY 1",
        {who, phone_number_id});
    if (!keys.ok()) return Unavailable(err, "conversation show", keys.status());
    if (keys->empty()) {
      err << "convoyctl: no conversation with " << who << "\n";
      return kNotFound;
    }
    if (keys->size() > 1) {
      err << "convoyctl: " << who << " has a conversation with " << keys->size()
          << " business numbers; name one with --phone_number_id or pass the key:\n";
      for (size_t i = 0; i < keys->size(); ++i) err << "  " << keys->get(i, 0) << "\n";
      return kUsage;
    }
    key = keys->get(0, 0);
  }
  auto conv = c.Exec(
      "SELECT phone_number_id, coalesce(wa_id, ''), coalesce(user_id, ''), coalesce(flow, ''), "
      "state::text, "
      "created_at::text, updated_at::text FROM conversations WHERE conversation_key = $1",
      {key});
  if (!conv.ok()) return Unavailable(err, "conversation show", conv.status());
  if (conv->empty()) {
    err << "convoyctl: no conversation " << key << "\n";
    return kNotFound;
  }
  const std::string lim = std::to_string(limit);
  auto ids = c.Exec(
      "SELECT identity, linked_at::text FROM identities WHERE conversation_key = $1 ORDER BY "
      "linked_at",
      {key});
  auto transitions = c.Exec(
      "SELECT at::text, from_step, to_step, note, trigger_dedupe_key, correlation_id FROM (SELECT "
      "* FROM transitions "
      "WHERE conversation_key = $1 ORDER BY id DESC LIMIT $2::int) t ORDER BY id",
      {key, lim});
  auto sends = c.Exec(
      "SELECT dedupe_key, status, attempts, coalesce(wamid, ''), coalesce(error_code::text, ''), "
      "coalesce(error_reason, ''), created_at::text FROM (SELECT * FROM outbound_messages WHERE "
      "conversation_key = $1 "
      "ORDER BY created_at DESC LIMIT $2::int) s ORDER BY created_at",
      {key, lim});
  auto deliveries = c.Exec(
      "SELECT result_id, sink, type, status, attempts, coalesce(last_status_code::text, ''), "
      "coalesce(last_error, ''), "
      "created_at::text FROM deliveries WHERE conversation_key = $1 ORDER BY id DESC LIMIT $2::int",
      {key, lim});
  for (const auto* r : {&ids, &transitions, &sends, &deliveries}) {
    if (!r->ok()) return Unavailable(err, "conversation show", r->status());
  }
  rapidjson::Document state;
  const std::string state_text = conv->get(0, 4);
  state.Parse(state_text.c_str(), state_text.size());
  if (o.json) {
    rapidjson::StringBuffer b;
    Writer w(b);
    auto rows = [&](const char* name, const PgRows& r, std::vector<const char*> cols) {
      w.Key(name);
      w.StartArray();
      for (size_t i = 0; i < r.size(); ++i) {
        w.StartObject();
        for (size_t j = 0; j < cols.size(); ++j) {
          w.Key(cols[j]);
          w.String(r.get(i, j));
        }
        w.EndObject();
      }
      w.EndArray();
    };
    w.StartObject();
    w.Key("conversation_key");
    w.String(key);
    w.Key("phone_number_id");
    w.String(conv->get(0, 0));
    w.Key("wa_id");
    w.String(conv->get(0, 1));
    w.Key("user_id");
    w.String(conv->get(0, 2));
    w.Key("flow");
    w.String(conv->get(0, 3));
    w.Key("created_at");
    w.String(conv->get(0, 5));
    w.Key("updated_at");
    w.String(conv->get(0, 6));
    w.Key("state");
    if (state.IsObject())
      state.Accept(w);
    else
      w.Null();
    rows("identities", *ids, {"identity", "linked_at"});
    rows("transitions", *transitions, {"at", "from", "to", "note", "trigger", "correlation_id"});
    rows("sends", *sends,
         {"dedupe_key", "status", "attempts", "wamid", "error_code", "error_reason", "created_at"});
    rows("deliveries", *deliveries,
         {"result_id", "sink", "type", "status", "attempts", "last_status_code", "last_error",
          "created_at"});
    w.EndObject();
    out << b.GetString() << "\n";
    return kOk;
  }
  out << "conversation " << key << "\n  business number " << conv->get(0, 0) << ", phone "
      << (conv->get(0, 1).empty() ? "(none shared)" : conv->get(0, 1)) << ", BSUID "
      << (conv->get(0, 2).empty() ? "(none)" : conv->get(0, 2)) << "\n  since " << conv->get(0, 5)
      << ", last change " << conv->get(0, 6) << "\n  identities:";
  for (size_t i = 0; i < ids->size(); ++i) out << " " << ids->get(i, 0);
  out << "\n  flow: "
      << (conv->get(0, 3).empty() ? "(none running)"
                                  : conv->get(0, 3) + ", step " + JsonStr(state, "step"))
      << "\n";
  const auto& fields = JsonMember(state, "fields");
  if (fields.IsObject() && fields.MemberCount() > 0) {
    out << "  fields:\n";
    for (const auto& m : fields.GetObject())
      out << "    " << m.name.GetString() << ": " << (m.value.IsString() ? m.value.GetString() : "")
          << "\n";
  }
  const auto& photos = JsonMember(state, "photos");
  if (photos.IsObject()) {
    for (const auto& m : photos.GetObject()) {
      if (!m.value.IsArray() || m.value.Empty()) continue;
      out << "  photos (" << m.name.GetString() << "):";
      for (const auto& p : m.value.GetArray()) {
        out << " " << JsonStr(p, "id")
            << (JsonStr(p, "stored").empty() ? " (fetching)" : " -> " + JsonStr(p, "stored"));
      }
      out << "\n";
    }
  }
  if (!JsonStr(state, "extracting").empty())
    out << "  waiting for its extractor (request " << JsonStr(state, "extracting") << ")\n";
  out << "  transitions (last " << transitions->size() << "):\n";
  for (size_t i = 0; i < transitions->size(); ++i) {
    out << "    " << transitions->get(i, 0) << "  " << transitions->get(i, 1) << " -> "
        << transitions->get(i, 2) << "  " << transitions->get(i, 3) << "  ("
        << transitions->get(i, 4) << ")\n";
  }
  out << "  sends (last " << sends->size() << "):\n";
  for (size_t i = 0; i < sends->size(); ++i) {
    out << "    " << sends->get(i, 6) << "  " << sends->get(i, 1)
        << "  attempts=" << sends->get(i, 2)
        << (sends->get(i, 3).empty() ? "" : "  " + sends->get(i, 3))
        << (sends->get(i, 4).empty() ? "" : "  error " + sends->get(i, 4) + ": " + sends->get(i, 5))
        << "  [" << sends->get(i, 0) << "]\n";
  }
  out << "  deliveries:\n";
  for (size_t i = 0; i < deliveries->size(); ++i) {
    out << "    " << deliveries->get(i, 7) << "  " << deliveries->get(i, 2) << " -> "
        << deliveries->get(i, 1) << "  " << deliveries->get(i, 3)
        << "  attempts=" << deliveries->get(i, 4)
        << (deliveries->get(i, 6).empty() ? "" : "  " + deliveries->get(i, 6)) << "  ["
        << deliveries->get(i, 0) << "]\n";
  }
  return kOk;
}

namespace {
// A call of a service's /v1/ API with the token; the answer's body in *body when 2xx.
int CallApi(const Options& o, const std::string& base_url, const std::string& method,
            const std::string& path, const std::string& request, std::string* body,
            std::ostream& err) {
  if (o.admin_token.empty()) {
    err << "convoyctl: no API token: set CONVOY_API_TOKEN (or --token_file) or CONVOY_ADMIN_TOKEN "
           "(or "
           "--admin_token_file)\n";
    return kUsage;
  }
  HttpClientRequest req;
  req.method = method;
  req.url = base_url + path;
  req.body = request;
  req.headers["Authorization"] = "Bearer " + o.admin_token;
  auto resp = HttpFetch(req);
  if (!resp.ok()) return Unavailable(err, method + " " + req.url, resp.status());
  if (resp->status / 100 != 2) {
    err << "convoyctl: " << method << " " << path << ": HTTP " << resp->status << ": " << resp->body
        << "\n";
    return resp->status == 404 ? kNotFound : kFailed;
  }
  *body = resp->body;
  return kOk;
}

int CallAdmin(const Options& o, const std::string& method, const std::string& path,
              const std::string& request, std::ostream& out, std::ostream& err) {
  std::string body;
  const int code = CallApi(o, o.outbound_url, method, path, request, &body, err);
  if (code == kOk) out << (o.json ? body : Pretty(body)) << "\n";
  return code;
}

// GET /v1/conversations<path> of conversation's API: with --json the answer is written out as it
// came
// (*shown), else parsed into *d.
int ReadConversations(const Options& o, const std::string& path, rapidjson::Document* d,
                      bool* shown, std::ostream& out, std::ostream& err) {
  std::string body;
  const int code =
      CallApi(o, o.conversation_url, "GET", "/v1/conversations" + path, "", &body, err);
  if (code != kOk) return code;
  if (o.json) {
    out << body << "\n";
    *shown = true;
  } else {
    d->Parse(body.c_str(), body.size());
  }
  return kOk;
}

// A member as text: a string as it is, a number or boolean written out, null or absent "".
std::string Text(const rapidjson::Value& v, const char* key) {
  const auto& m = JsonMember(v, key);
  if (m.IsString()) return std::string(m.GetString(), m.GetStringLength());
  if (m.IsInt64()) return std::to_string(m.GetInt64());
  if (m.IsBool()) return m.GetBool() ? "true" : "false";
  return "";
}

// "2026-12-07T08:00:01.123456+00:00" (PostgreSQL's JSON) -> "2026-12-07 08:00:01".
std::string Moment(const std::string& t) {
  if (t.size() < 19) return t.empty() ? "-" : t;
  std::string out = t.substr(0, 19);
  out[10] = ' ';
  return out;
}

// One line of text: line breaks shown as "\\n", at most `max` characters (UTF-8 kept whole).
std::string OneLine(const std::string& s, size_t max) {
  std::string out;
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) != 0x80 && ++chars > max) return out + "...";
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r' || c == '\t') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}
}  // namespace

bool IsConversationId(const std::string& who) {
  if (who.size() != 36) return false;
  for (size_t i = 0; i < who.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (who[i] == '-')) return false;
    if (!dash && !std::isxdigit(static_cast<unsigned char>(who[i]))) return false;
  }
  return true;
}

int ConversationTranscript(const Options& o, const std::string& id, int messages, std::ostream& out,
                           std::ostream& err) {
  if (!IsConversationId(id)) {
    err << "convoyctl: " << id
        << " is not a conversation id (a uuid, as GET /v1/conversations lists them)\n";
    return kUsage;
  }
  rapidjson::Document d;
  bool shown = false;
  const int code = ReadConversations(o, "/" + id + "?messages=" + std::to_string(messages), &d,
                                     &shown, out, err);
  if (code != kOk || shown) return code;
  if (!d.IsObject()) {
    err << "convoyctl: the conversation's API answered something that is not a conversation\n";
    return kFailed;
  }
  const std::string person = Text(d, "wa_id").empty() ? Text(d, "user_id") : Text(d, "wa_id");
  out << "conversation " << Text(d, "id") << "\n  business number " << Text(d, "phone_number_id")
      << ", customer " << (person.empty() ? "(unknown)" : person) << "\n  owner "
      << Text(d, "owner")
      << (Text(d, "owner_agent").empty() ? "" : " (" + Text(d, "owner_agent") + ")")
      << (Text(d, "owner_since").empty() ? "" : " since " + Moment(Text(d, "owner_since")))
      << (Text(d, "thread_control").empty()
              ? ""
              : ", Meta's thread control (" + Text(d, "thread_control") + ") on its way")
      << "\n  flow "
      << (Text(d, "flow").empty() ? "(none running)"
                                  : Text(d, "flow") + ", step " + Text(d, "step"))
      << "\n  window "
      << (Text(d, "window_open") == "true" ? "open until " + Moment(Text(d, "window_open_until"))
                                           : "closed")
      << "\n";
  const auto& said = JsonMember(d, "messages");
  out << "  messages (last " << (said.IsArray() ? said.Size() : 0) << "):\n";
  if (!said.IsArray()) return kOk;
  for (const auto& m : said.GetArray()) {
    std::string what = Text(m, "body");
    if (what.empty() && !Text(m, "media_id").empty()) what = "(media " + Text(m, "media_id") + ")";
    const std::string channel = Text(m, "channel");
    out << "    " << Moment(Text(m, "at")) << "  " << Text(m, "author") << "  " << Text(m, "kind")
        << (channel.empty() || channel == "messages" ? "" : " on " + channel) << "  "
        << OneLine(what, 200)
        << (Text(m, "status").empty()
                ? ""
                : "  [" + Text(m, "status") +
                      (Text(m, "error_code").empty() ? "" : " " + Text(m, "error_code")) + "]")
        << "\n";
  }
  return kOk;
}

int ConversationList(const Options& o, const std::string& query, std::ostream& out,
                     std::ostream& err) {
  rapidjson::Document d;
  bool shown = false;
  const int code = ReadConversations(o, query.empty() ? "" : "?" + query, &d, &shown, out, err);
  if (code != kOk || shown) return code;
  const auto& list = JsonMember(d, "conversations");
  if (!list.IsArray()) {
    err << "convoyctl: the conversation's API answered something that is not a list of "
           "conversations\n";
    return kFailed;
  }
  for (const auto& c : list.GetArray()) {
    const std::string person = Text(c, "wa_id").empty() ? Text(c, "user_id") : Text(c, "wa_id");
    out << Text(c, "id") << "  " << Text(c, "owner")
        << (Text(c, "owner_agent").empty() ? "" : " (" + Text(c, "owner_agent") + ")") << "  "
        << Text(c, "phone_number_id") << "  " << (person.empty() ? "-" : person) << "  "
        << (Text(c, "flow").empty() ? "-" : Text(c, "flow") + "/" + Text(c, "step")) << "  window "
        << (Text(c, "window_open") == "true" ? "open" : "closed") << "  updated "
        << Moment(Text(c, "updated_at")) << "\n";
  }
  out << list.Size() << " conversation(s)";
  if (!Text(d, "next_cursor").empty()) out << "; more with --cursor " << Text(d, "next_cursor");
  out << "\n";
  return kOk;
}

int DeliveriesList(const Options& o, const std::string& query, std::ostream& out,
                   std::ostream& err) {
  return CallAdmin(o, "GET", "/v1/deliveries" + (query.empty() ? "" : "?" + query), "", out, err);
}

int DeliveriesReplay(const Options& o, const std::string& body, std::ostream& out,
                     std::ostream& err) {
  return CallAdmin(o, "POST", "/v1/deliveries/replay", body, out, err);
}

int TemplatesList(const Options& o, const std::string& query, std::ostream& out,
                  std::ostream& err) {
  return CallAdmin(o, "GET", "/v1/templates" + (query.empty() ? "" : "?" + query), "", out, err);
}

int TemplatesSync(const Options& o, const std::string& waba_id, std::ostream& out,
                  std::ostream& err) {
  return CallAdmin(o, "POST", "/v1/templates/sync", R"({"waba_id":")" + JsonEscape(waba_id) + "\"}",
                   out, err);
}

std::vector<HealthCheck> CheckHealth(const std::string& pg_dsn, const AmqpOptions* broker,
                                     const HealthThresholds& t) {
  using Check = HealthCheck;
  auto judge = [](Check& c) {
    if (!c.error.empty())
      c.level = kCritical;
    else if (c.value > 2 * c.threshold)
      c.level = kCritical;
    else if (c.value > c.threshold)
      c.level = kWarning;
  };
  Result<std::unique_ptr<PgConnection>> db =
      pg_dsn.empty()
          ? Result<std::unique_ptr<PgConnection>>(
                Status(Code::kInvalidArgument, "no database: pass --pg_dsn or set CONVOY_PG_DSN"))
          : PgConnection::Connect(pg_dsn);
  auto scalar = [&](const std::string& sql, const PgParams& params, Check& c) {
    if (!db.ok()) {
      c.error = db.status().ToString();
      return;
    }
    auto r = (*db)->Exec(sql, params);
    if (!r.ok()) {
      c.error = r.status().ToString();
      return;
    }
    c.value = r->empty() || r->get(0, 0).empty() ? 0 : std::stod(r->get(0, 0));
  };
  Check stuck{"stuck conversations", 0, static_cast<double>(t.stuck), "", "", kOk};
  // A flow waiting on an effect that has not come back: a command its consumer has not settled
  // (the ledger) long past its due time, or a result still waiting for photos past its due time.
  scalar(
      "SELECT count(*) FROM (SELECT conversation_key FROM outbox WHERE settled_at IS NULL AND "
      "due_at IS NOT NULL "
      "AND due_at < now() - make_interval(secs => $1::float8) AND conversation_key IS NOT NULL "
      "UNION "
      "SELECT conversation_key FROM conversations WHERE jsonb_typeof(state->'results') = 'array' "
      "AND EXISTS "
      "(SELECT 1 FROM jsonb_array_elements(state->'results') r WHERE (r->>'due_at')::bigint < "
      "extract(epoch FROM now()) - $1::float8)) s",
      {std::to_string(t.stuck_after)}, stuck);
  Check parked{"parked messages", 0, static_cast<double>(t.parked), "", "", kOk};
  {
    AmqpAdmin admin;
    Status s = broker == nullptr ? Status(Code::kInvalidArgument,
                                          "no broker: pass --amqp_url or set CONVOY_AMQP_URL")
                                 : OpenAdmin(admin, *broker);
    for (const auto& q : ConvoyTopology().work_queues) {
      if (!s.ok()) break;
      auto st = admin.Inspect(q + ".dlq");
      if (!st.ok())
        s = st.status();
      else
        parked.value += st->messages;
    }
    if (!s.ok()) parked.error = s.ToString();
  }
  Check errors{"errors in the last hour", 0, static_cast<double>(t.errors), "", "", kOk};
  scalar(
      "SELECT (SELECT count(*) FROM outbound_messages WHERE status = 'failed' AND updated_at > "
      "now() - interval '1 hour') "
      "+ (SELECT count(*) FROM delivery_attempts WHERE outcome IN ('retry', 'uncertain', "
      "'permanent', 'gone') AND started_at > now() - "
      "interval '1 hour')",
      {}, errors);
  Check p95{"p95 webhook to send", 0, t.p95_seconds, " s", "", kOk};
  scalar(
      "SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM attempt_started_at - "
      "received_at)) "
      "FROM outbound_messages WHERE received_at IS NOT NULL AND attempt_started_at > now() - "
      "interval '1 hour'",
      {}, p95);
  Check failed{"failed sends, last hour", 0, t.failed_percent, " %", "", kOk};
  scalar(
      "SELECT 100.0 * count(*) FILTER (WHERE status = 'failed') / greatest(count(*), 1) FROM "
      "outbound_messages "
      "WHERE status IN ('sent', 'delivered', 'read', 'failed') AND updated_at > now() - interval "
      "'1 hour'",
      {}, failed);
  std::vector<Check> checks = {stuck, parked, errors, p95, failed};
  for (auto& c : checks) judge(c);
  return checks;
}

int WorstLevel(const std::vector<HealthCheck>& checks) {
  int worst = kOk;
  for (const auto& c : checks) worst = std::max(worst, c.level);
  return worst;
}

std::string HealthJson(const std::vector<HealthCheck>& checks) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("status");
  w.String(LevelName(WorstLevel(checks)));
  w.Key("checks");
  w.StartArray();
  for (const auto& c : checks) {
    w.StartObject();
    w.Key("name");
    w.String(c.name);
    w.Key("value");
    w.Double(c.value);
    w.Key("threshold");
    w.Double(c.threshold);
    w.Key("unit");
    w.String(c.unit);
    w.Key("status");
    w.String(LevelName(c.level));
    if (!c.error.empty()) {
      w.Key("error");
      w.String(c.error);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(b.GetString(), b.GetSize());
}

const char* LevelName(int l) { return l == kOk ? "ok" : l == kWarning ? "warning" : "critical"; }

int Health(const Options& o, const HealthThresholds& t, std::ostream& out, std::ostream& err) {
  AmqpOptions broker = CtlAmqp(o.amqp_url);
  const std::vector<HealthCheck> checks =
      CheckHealth(o.pg_dsn, o.amqp_url.empty() ? nullptr : &broker, t);
  const int worst = WorstLevel(checks);
  for (const auto& c : checks) {
    if (!c.error.empty())
      err << "convoyctl: health: " << c.name << " could not be checked: " << c.error << "\n";
  }
  auto level_name = LevelName;
  if (o.json) {
    out << HealthJson(checks) << "\n";
    return worst;
  }
  for (const auto& c : checks) {
    std::ostringstream v;
    v << std::fixed << std::setprecision(c.unit.empty() ? 0 : 2) << c.value << c.unit;
    out << std::left << std::setw(26) << c.name << std::setw(10)
        << (c.error.empty() ? v.str() : "?") << " (threshold " << c.threshold << c.unit << ")  "
        << level_name(c.level) << (c.error.empty() ? "" : ": " + c.error) << "\n";
  }
  out << "health: " << level_name(worst) << "\n";
  return worst;
}

int Stats(const Options& o, int64_t window_seconds, std::ostream& out, std::ostream& err) {
  auto db = Db(o);
  if (!db.ok()) return Unavailable(err, "stats", db.status());
  PgConnection& c = **db;
  const std::string w = std::to_string(window_seconds);
  auto inbound = c.Exec(
      "SELECT count(*) FROM inbound_messages WHERE kind = 'message' AND processed_at > now() - "
      "make_interval(secs => $1::float8)",
      {w});
  auto sends = c.Exec(
      "SELECT status, count(*) FROM outbound_messages WHERE created_at > now() - "
      "make_interval(secs => "
      "$1::float8) GROUP BY status ORDER BY 2 DESC",
      {w});
  auto latency = c.Exec(
      "SELECT count(*), coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY l), 0), "
      "coalesce(percentile_cont(0.95) "
      "WITHIN GROUP (ORDER BY l), 0), coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY l), "
      "0), coalesce(max(l), 0) "
      "FROM (SELECT extract(epoch FROM attempt_started_at - received_at) AS l FROM "
      "outbound_messages WHERE received_at "
      "IS NOT NULL AND attempt_started_at > now() - make_interval(secs => $1::float8)) x",
      {w});
  auto deliveries = c.Exec(
      "SELECT status, count(*) FROM deliveries WHERE created_at > now() - make_interval(secs => "
      "$1::float8) GROUP BY status ORDER BY 2 DESC",
      {w});
  auto notes = c.Exec(
      "SELECT note, count(*) FROM transitions WHERE at > now() - make_interval(secs => $1::float8) "
      "GROUP BY note ORDER BY 2 DESC LIMIT 10",
      {w});
  for (const auto* r : {&inbound, &sends, &latency, &deliveries, &notes}) {
    if (!r->ok()) return Unavailable(err, "stats", r->status());
  }
  const double minutes = window_seconds / 60.0;
  if (o.json) {
    rapidjson::StringBuffer b;
    Writer j(b);
    auto counts = [&](const char* name, const PgRows& r) {
      j.Key(name);
      j.StartObject();
      for (size_t i = 0; i < r.size(); ++i) {
        const std::string k = r.get(i, 0);
        j.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
        j.Int64(r.get_int(i, 1));
      }
      j.EndObject();
    };
    j.StartObject();
    j.Key("window_seconds");
    j.Int64(window_seconds);
    j.Key("messages_in");
    j.Int64(inbound->get_int(0, 0));
    j.Key("messages_in_per_minute");
    j.Double(inbound->get_int(0, 0) / minutes);
    counts("sends", *sends);
    j.Key("webhook_to_send_seconds");
    j.StartObject();
    j.Key("count");
    j.Int64(latency->get_int(0, 0));
    j.Key("p50");
    j.Double(std::stod(latency->get(0, 1)));
    j.Key("p95");
    j.Double(std::stod(latency->get(0, 2)));
    j.Key("p99");
    j.Double(std::stod(latency->get(0, 3)));
    j.Key("max");
    j.Double(std::stod(latency->get(0, 4)));
    j.EndObject();
    counts("deliveries", *deliveries);
    counts("transitions", *notes);
    j.EndObject();
    out << b.GetString() << "\n";
    return kOk;
  }
  out << "last " << Age(window_seconds) << ":\n  messages in: " << inbound->get(0, 0) << " ("
      << std::fixed << std::setprecision(1) << inbound->get_int(0, 0) / minutes
      << "/min)\n  sends:";
  for (size_t i = 0; i < sends->size(); ++i)
    out << " " << sends->get(i, 0) << "=" << sends->get(i, 1);
  out << "\n  webhook to send (" << latency->get(0, 0) << " replies): p50 " << std::setprecision(3)
      << std::stod(latency->get(0, 1)) << " s, p95 " << std::stod(latency->get(0, 2)) << " s, p99 "
      << std::stod(latency->get(0, 3)) << " s, max " << std::stod(latency->get(0, 4))
      << " s\n  deliveries:";
  for (size_t i = 0; i < deliveries->size(); ++i)
    out << " " << deliveries->get(i, 0) << "=" << deliveries->get(i, 1);
  out << "\n  transitions by note:";
  for (size_t i = 0; i < notes->size(); ++i)
    out << " " << notes->get(i, 0) << "=" << notes->get(i, 1);
  out << "\n";
  return kOk;
}

int TokenHash(const std::string& name, const std::string& role, const std::string& tenant,
              std::istream& in, std::ostream& out, std::ostream& err) {
  std::string token;
  std::getline(in, token);
  if (!token.empty() && token.back() == '\r') token.pop_back();
  if (token.empty() || token.find_first_of(" \t") != std::string::npos) {
    err << "convoyctl: token hash: the token (stdin, one line) is empty or holds whitespace\n";
    return kUsage;
  }
  const std::string line = name + " " + role + " " + tenant + " " + TokenHashField(token);
  auto checked = TokenSet::Parse(line, "token hash");
  if (!checked.ok()) {
    std::string why = checked.status().message();
    const std::string where =
        "token hash:1: ";  // the loader names the file and line; here there is one line
    if (why.rfind(where, 0) == 0) why.erase(0, where.size());
    err << "convoyctl: token hash: " << why << "\n";
    return kUsage;
  }
  if (token.size() < 32) {
    err << "convoyctl: warning: a token of " << token.size()
        << " characters is short; use 32 or more random ones\n";
  }
  out << line << "\n";
  return kOk;
}

}  // namespace convoy::ctl
