#include "chatwoot_hook.h"

#include <glog/logging.h>
#include <rapidjson/document.h>

#include "chatwoot.h"
#include "convoy/json.h"
#include "convoy/metrics.h"
#include "convoy/pg.h"
#include "convoy/rapidjson_util.h"

namespace convoy::outbound::chatwoot {

namespace {

int64_t SystemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Each webhook by outcome: sent (queued to the customer), duplicate, ignored, refused (signature),
// not_found, unsendable (4xx from conversation), failed (conversation or the database unreachable).
HttpResponse Counted(const std::string& sink, const char* outcome, HttpResponse r) {
  DefaultRegistry()
      .GetCounter("convoy_chatwoot_webhooks_total", "Chatwoot inbox webhooks by outcome.",
                  "sink=\"" + sink + "\",outcome=\"" + outcome + "\"")
      .Inc();
  return r;
}

int64_t IntOf(const rapidjson::Value& v, const char* key) {
  const auto& m = JsonMember(v, key);
  if (m.IsInt64()) return m.GetInt64();
  if (m.IsString()) return std::atoll(m.GetString());  // the documented sample has "id": "1"
  return 0;
}

}  // namespace

HttpResponse HandleHook(const HttpRequest& r, const SinkSet& sinks, const HookSettings& settings) {
  const std::string name = r.path.substr(std::string(kHookPrefix).size());
  const Sink* sink = sinks.Find(name);
  if (!sink || sink->kind != Sink::Kind::kChatwoot) {
    return Counted("unknown", "not_found",
                   JsonError(404, "not_found", "no chatwoot sink of that name"));
  }
  const int64_t now = settings.now ? settings.now() : SystemNow();
  if (!VerifySignature(sink->keys, r.Header("x-chatwoot-timestamp"), r.body,
                       r.Header("x-chatwoot-signature"), now)) {
    LOG_EVERY_N(WARNING, 20)
        << "service=outbound handler=chatwoot_hook event=chatwoot_signature_refused sink=" << name
        << " (a missing or wrong X-Chatwoot-Signature, or a timestamp over 5 minutes off)";
    return Counted(name, "refused",
                   JsonError(401, "unauthenticated", "the X-Chatwoot-Signature does not verify"));
  }
  rapidjson::Document d;
  d.Parse(r.body.c_str(), r.body.size());
  if (d.HasParseError() || !d.IsObject())
    return Counted(name, "ignored", JsonError(400, "invalid_argument", "not a JSON object"));
  auto ignored = [&](const std::string& why) {
    return Counted(
        name, "ignored",
        JsonResponse(200, "{\"ignored\":" + std::string("\"") + JsonEscape(why) + "\"}"));
  };
  if (JsonStr(d, "event") != "message_created") return ignored("only message_created is taken");
  if (JsonStr(d, "message_type") != "outgoing") return ignored("not an agent's message");
  if (JsonMember(d, "private").IsTrue()) return ignored("a private note");
  const int64_t message_id = IntOf(d, "id"),
                conversation_id = IntOf(JsonMember(d, "conversation"), "id");
  const std::string who = "sink=" + name + " chatwoot_message=" + std::to_string(message_id) +
                          " chatwoot_conversation=" + std::to_string(conversation_id);
  if (IntOf(JsonMember(d, "account"), "id") != sink->account_id ||
      IntOf(JsonMember(d, "inbox"), "id") != sink->inbox_id) {
    LOG(WARNING) << "service=outbound handler=chatwoot_hook event=chatwoot_wrong_inbox " << who;
    return Counted(name, "not_found",
                   JsonError(404, "not_found", "not this sink's account and inbox"));
  }
  if (message_id <= 0 || conversation_id <= 0)
    return Counted(name, "ignored",
                   JsonError(400, "invalid_argument", "no message or conversation id"));
  const std::string content = JsonStr(d, "content");
  if (content.empty()) {
    return Counted(name, "unsendable",
                   JsonError(422, "unsupported", "only text replies go out through convoy"));
  }
  auto db = PgConnection::Connect(settings.pg_dsn);
  if (!db.ok())
    return Counted(name, "failed", JsonError(503, "unavailable", "the database is unreachable"));
  auto convoy_id = ConvoyConversation(**db, name, conversation_id);
  if (!convoy_id.ok())
    return Counted(name, "failed", JsonError(503, "unavailable", "the database is unreachable"));
  if (convoy_id->empty()) {
    LOG(WARNING) << "service=outbound handler=chatwoot_hook event=chatwoot_conversation_unknown "
                 << who;
    return Counted(name, "not_found",
                   JsonError(404, "not_found", "convoy mirrors no conversation into this one"));
  }
  HttpClientRequest req;
  req.method = "POST";
  req.url = settings.conversation_api_url + "/v1/conversations/" + *convoy_id + "/messages";
  req.timeout = settings.timeout;
  req.deadline = settings.timeout;
  req.headers["Authorization"] = "Bearer " + sink->agent_token;
  req.headers["Idempotency-Key"] = "chatwoot:" + name + ":" + std::to_string(message_id);
  req.body = "{\"text\":\"" + JsonEscape(content) + "\"}";
  auto resp = HttpFetch(req);
  if (!resp.ok()) {
    LOG(WARNING) << "service=outbound handler=chatwoot_hook event=chatwoot_reply_failed " << who
                 << " conversation_id=" << *convoy_id << " error=" << resp.status().ToString();
    return Counted(name, "failed",
                   JsonError(503, "unavailable", "conversation did not answer: try again"));
  }
  const int s = resp->status;
  LOG(INFO) << "service=outbound handler=chatwoot_hook event=chatwoot_reply " << who
            << " conversation_id=" << *convoy_id << " status=" << s;
  if (s == 202) return Counted(name, "sent", JsonResponse(200, resp->body));
  if (s == 200) return Counted(name, "duplicate", JsonResponse(200, resp->body));
  if (s == 401 || s == 403) {
    LOG(ERROR) << "service=outbound handler=chatwoot_hook event=chatwoot_agent_token_refused "
               << who << " (the sink's agent_token needs the role agent and the number's tenant)";
    return Counted(name, "failed",
                   JsonError(502, "misconfigured", "convoy refused the sink's agent_token"));
  }
  if (s / 100 == 4) return Counted(name, "unsendable", JsonResponse(s, resp->body));
  return Counted(name, "failed",
                 JsonError(503, "unavailable", "conversation answered " + std::to_string(s)));
}

}  // namespace convoy::outbound::chatwoot
