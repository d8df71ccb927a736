#include "fake_chatwoot.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <functional>
#include <regex>

#include "convoy/crypto.h"
#include "convoy/json.h"
#include "convoy/rapidjson_util.h"
#include "fake_ids.h"

namespace convoy::fake {

namespace {

using W = rapidjson::Writer<rapidjson::StringBuffer>;

HttpResponse Json(int status, const std::string& body) {
  return {status, "application/json; charset=utf-8", body, {}, ""};
}

std::string Obj(const std::function<void(W&)>& fill) {
  rapidjson::StringBuffer b;
  W w(b);
  w.StartObject();
  fill(w);
  w.EndObject();
  return std::string(b.GetString(), b.GetSize());
}

void Str(W& w, const char* key, const std::string& v) {
  w.Key(key);
  w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
}

void Int(W& w, const char* key, int64_t v) {
  w.Key(key);
  w.Int64(v);
}

// Chatwoot's errors: a model validation is 422 {"message", "attributes"}, a missing record 404.
HttpResponse Unprocessable(const std::string& message, const std::string& attribute) {
  return Json(422, Obj([&](W& w) {
                Str(w, "message", message);
                w.Key("attributes");
                w.StartArray();
                w.String(attribute.c_str());
                w.EndArray();
              }));
}
HttpResponse NotFound() { return Json(404, R"({"error":"Resource could not be found"})"); }

void ContactJson(W& w, const FakeChatwoot::Contact& c, int64_t inbox) {
  w.StartObject();
  Int(w, "id", c.id);
  Str(w, "name", c.name);
  Str(w, "identifier", c.identifier);
  w.Key("phone_number");
  c.phone_number.empty() ? w.Null() : w.String(c.phone_number.c_str());
  w.Key("email");
  w.Null();
  Str(w, "type", "contact");
  w.Key("contact_inboxes");
  w.StartArray();
  w.StartObject();
  Str(w, "source_id", c.identifier);
  w.Key("inbox");
  w.StartObject();
  Int(w, "id", inbox);
  Str(w, "channel_type", "Channel::Api");
  w.EndObject();
  w.EndObject();
  w.EndArray();
  w.EndObject();
}

void MessageJson(W& w, const FakeChatwoot::Message& m, int64_t account, int64_t inbox) {
  w.StartObject();
  Int(w, "id", m.id);
  Str(w, "content", m.content);
  Int(w, "account_id", account);
  Int(w, "inbox_id", inbox);
  Int(w, "conversation_id", m.conversation_id);
  Int(w, "message_type", m.message_type == "incoming" ? 0 : 1);  // the API's own answer: an integer
  Int(w, "created_at", m.created_at);
  w.Key("private");
  w.Bool(m.is_private);
  Str(w, "status", "sent");
  w.Key("source_id");
  m.source_id.empty() ? w.Null() : w.String(m.source_id.c_str());
  Str(w, "content_type", "text");
  w.EndObject();
}

void ConversationJson(W& w, const FakeChatwoot::Conversation& c, int64_t account) {
  w.StartObject();
  Int(w, "id", c.id);
  Int(w, "account_id", account);
  Int(w, "inbox_id", c.inbox_id);
  Str(w, "status", c.status);
  Str(w, "channel", "Channel::Api");
  w.Key("additional_attributes");
  w.StartObject();
  if (!c.convoy_conversation_id.empty()) Str(w, "convoy_conversation_id", c.convoy_conversation_id);
  w.EndObject();
  w.Key("contact_inbox");
  w.StartObject();
  Int(w, "contact_id", c.contact_id);
  Int(w, "inbox_id", c.inbox_id);
  Str(w, "source_id", c.source_id);
  w.EndObject();
  w.EndObject();
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

FakeChatwoot::FakeChatwoot(std::string token, int64_t account_id, int64_t inbox_id,
                           std::string webhook_secret)
    : token_(std::move(token)),
      secret_(std::move(webhook_secret)),
      account_(account_id),
      inbox_(inbox_id),
      next_id_(static_cast<int64_t>(1000 + StartNonce() % 1000000)) {}

FakeChatwoot::~FakeChatwoot() {
  ReleaseDelayed();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (poster_.joinable()) poster_.join();
  if (server_) server_->Stop();
}

Status FakeChatwoot::Start() {
  server_ = std::make_unique<HttpServer>(HttpServerOptions{"127.0.0.1", 0, 1 << 20});
  for (const char* method : {"GET", "POST"}) {
    server_->Route(method, "/api/v1/accounts/", [this](const HttpRequest& r) { return Handle(r); });
  }
  poster_ = std::thread([this] { PostLoop(); });
  return server_->Start();
}

std::string FakeChatwoot::url() const {
  return "http://127.0.0.1:" + std::to_string(server_->port());
}

void FakeChatwoot::SetWebhookUrl(const std::string& url) {
  std::lock_guard<std::mutex> lock(mu_);
  webhook_url_ = url;
}

std::vector<FakeChatwoot::Contact> FakeChatwoot::Contacts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return contacts_;
}

std::vector<FakeChatwoot::Conversation> FakeChatwoot::Conversations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return conversations_;
}

std::vector<FakeChatwoot::Message> FakeChatwoot::Messages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_;
}

size_t FakeChatwoot::Calls(const std::string& route) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!route.empty()) return calls_.count(route) ? calls_.at(route) : 0;
  size_t n = 0;
  for (const auto& [_, c] : calls_) n += c;
  return n;
}

bool FakeChatwoot::WaitForMessages(size_t count, std::chrono::milliseconds deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, deadline, [&] { return messages_.size() >= count; });
}

void FakeChatwoot::DelayNextMessage(int delay_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  delay_next_ms_ = delay_ms;
  release_ = false;
}

void FakeChatwoot::ReleaseDelayed() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    release_ = true;
  }
  cv_.notify_all();
}

std::string FakeChatwoot::WebhookBody(const Message& m) const {
  const Conversation* conv = nullptr;
  for (const auto& c : conversations_) {
    if (c.id == m.conversation_id) conv = &c;
  }
  return Obj([&](W& w) {
    Str(w, "event", "message_created");
    Int(w, "id", m.id);
    Str(w, "content", m.content);
    Str(w, "created_at", "2026-12-07T08:00:00.000Z");
    Str(w, "message_type", m.message_type);  // the webhook's own: a string
    Str(w, "content_type", "text");
    w.Key("content_attributes");
    w.StartObject();
    w.EndObject();
    w.Key("private");
    w.Bool(m.is_private);
    w.Key("source_id");
    m.source_id.empty() ? w.Null() : w.String(m.source_id.c_str());
    w.Key("sender");
    w.StartObject();
    if (m.message_type == "outgoing") {
      Int(w, "id", 7);
      Str(w, "name", "Sam");
      Str(w, "email", "sam@acme.example");
      Str(w, "type", "user");
    } else {
      Int(w, "id", conv ? conv->contact_id : 0);
      Str(w, "type", "contact");
    }
    w.EndObject();
    w.Key("inbox");
    w.StartObject();
    Int(w, "id", inbox_);
    Str(w, "name", "WhatsApp (convoy)");
    w.EndObject();
    w.Key("conversation");
    Conversation unknown;  // one the fake did not open (a unit test's message)
    unknown.id = m.conversation_id;
    unknown.inbox_id = inbox_;
    unknown.status = "open";
    ConversationJson(w, conv ? *conv : unknown, account_);
    w.Key("account");
    w.StartObject();
    Int(w, "id", account_);
    Str(w, "name", "Acme");
    w.EndObject();
  });
}

int FakeChatwoot::Post(int64_t message_id) {
  std::string url, body;
  {
    std::lock_guard<std::mutex> lock(mu_);
    url = webhook_url_;
    for (const auto& m : messages_) {
      if (m.id == message_id) body = WebhookBody(m);
    }
  }
  if (url.empty() || body.empty()) return 0;
  const std::string ts = std::to_string(NowSeconds());
  HttpClientRequest req;
  req.method = "POST";
  req.url = url;
  req.body = body;
  req.timeout = std::chrono::milliseconds(5000);  // Webhooks::Trigger's
  req.headers["X-Chatwoot-Timestamp"] = ts;
  req.headers["X-Chatwoot-Signature"] = "sha256=" + HexEncode(HmacSha256(secret_, ts + "." + body));
  req.headers["X-Chatwoot-Delivery"] = "delivery-" + std::to_string(message_id);
  auto resp = HttpFetch(req);
  const int status = resp.ok() ? resp->status : 0;
  std::lock_guard<std::mutex> lock(mu_);
  posted_.push_back({message_id, status});
  cv_.notify_all();
  return status;
}

void FakeChatwoot::PostLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !to_post_.empty(); });
    if (stop_) return;
    const int64_t id = to_post_.front();
    to_post_.pop_front();
    lock.unlock();
    Post(id);
    lock.lock();
  }
}

int FakeChatwoot::AgentReplies(int64_t conversation_id, const std::string& content,
                               int64_t* message_id, bool is_private) {
  Message m;
  {
    std::lock_guard<std::mutex> lock(mu_);
    m.id = next_id_++;
    m.conversation_id = conversation_id;
    m.content = content;
    m.message_type = "outgoing";
    m.is_private = is_private;
    m.created_at = NowSeconds();
    messages_.push_back(m);
  }
  if (message_id) *message_id = m.id;
  return Post(m.id);
}

int FakeChatwoot::Redeliver(int64_t message_id) { return Post(message_id); }

std::vector<FakeChatwoot::Webhook> FakeChatwoot::WebhooksPosted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return posted_;
}

bool FakeChatwoot::WaitForWebhooks(size_t count, std::chrono::milliseconds deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, deadline, [&] { return posted_.size() >= count; });
}

HttpResponse FakeChatwoot::Handle(const HttpRequest& r) {
  static const std::regex kRoute(R"(^/api/v1/accounts/([0-9]+)(/.*)$)");
  std::smatch m;
  if (!std::regex_match(r.path, m, kRoute)) return NotFound();
  if (r.Header("api_access_token") != token_) {
    return Json(401, R"({"errors":["You need to sign in or sign up before continuing."]})");
  }
  if (std::stoll(m[1].str()) != account_)
    return Json(401, R"({"error":"You are not authorized to access this account"})");
  std::string path = m[2].str();
  // The route as counted: ids written as {id}.
  const std::string route =
      r.method + " " + std::regex_replace(path, std::regex("/[0-9]+"), "/{id}");
  rapidjson::Document body;
  if (r.method == "POST") {
    body.Parse(r.body.c_str(), r.body.size());
    if (body.HasParseError() || !body.IsObject()) return Json(400, R"({"error":"malformed JSON"})");
  }
  std::unique_lock<std::mutex> lock(mu_);
  calls_[route]++;
  static const std::regex kId("/([0-9]+)/");
  std::smatch id_match;
  const int64_t id = std::regex_search(path, id_match, kId) ? std::stoll(id_match[1].str()) : 0;
  auto find_conv = [&](int64_t cid) -> Conversation* {
    for (auto& c : conversations_) {
      if (c.id == cid) return &c;
    }
    return nullptr;
  };

  if (route == "GET /contacts/search") {
    auto q = r.query.count("q") ? r.query.at("q") : "";
    std::vector<Contact> hits;
    for (const auto& c : contacts_) {
      // Chatwoot matches name, email, phone number and identifier with ILIKE '%q%'.
      if (!q.empty() &&
          (c.identifier.find(q) != std::string::npos || c.name.find(q) != std::string::npos))
        hits.push_back(c);
    }
    return Json(200, Obj([&](W& w) {
                  w.Key("meta");
                  w.StartObject();
                  Int(w, "count", static_cast<int64_t>(hits.size()));
                  Int(w, "current_page", 1);
                  w.EndObject();
                  w.Key("payload");
                  w.StartArray();
                  for (const auto& c : hits) ContactJson(w, c, inbox_);
                  w.EndArray();
                }));
  }
  if (route == "POST /contacts") {
    if (JsonMember(body, "inbox_id").IsInt64() && body["inbox_id"].GetInt64() != inbox_)
      return NotFound();
    Contact c;
    c.name = JsonStr(body, "name");
    c.identifier = JsonStr(body, "identifier");
    c.phone_number = JsonStr(body, "phone_number");
    for (const auto& other : contacts_) {
      if (!c.identifier.empty() && other.identifier == c.identifier)
        return Unprocessable("Identifier has already been taken", "identifier");
    }
    if (!c.phone_number.empty() &&
        !std::regex_match(c.phone_number, std::regex(R"(^\+[1-9][0-9]{1,14}$)"))) {
      return Unprocessable("Phone number should be in e164 format", "phone_number");
    }
    c.id = next_id_++;
    contacts_.push_back(c);
    return Json(200, Obj([&](W& w) {
                  w.Key("payload");
                  w.StartObject();
                  w.Key("contact");
                  ContactJson(w, c, inbox_);
                  w.Key("contact_inbox");
                  w.StartObject();
                  Str(w, "source_id", c.identifier);
                  w.EndObject();
                  w.EndObject();
                }));
  }
  if (route == "GET /contacts/{id}/conversations") {
    return Json(200, Obj([&](W& w) {
                  w.Key("payload");
                  w.StartArray();
                  for (const auto& c : conversations_) {
                    if (c.contact_id == id) ConversationJson(w, c, account_);
                  }
                  w.EndArray();
                }));
  }
  if (route == "POST /conversations") {
    Conversation c;
    c.source_id = JsonStr(body, "source_id");
    if (c.source_id.empty()) return Unprocessable("Source can't be blank", "source_id");
    c.contact_id = JsonMember(body, "contact_id").IsInt64() ? body["contact_id"].GetInt64() : 0;
    c.inbox_id = JsonMember(body, "inbox_id").IsInt64() ? body["inbox_id"].GetInt64() : 0;
    if (c.inbox_id != inbox_ ||
        std::none_of(contacts_.begin(), contacts_.end(),
                     [&](const Contact& k) { return k.id == c.contact_id; })) {
      return NotFound();
    }
    c.status = JsonStr(body, "status").empty() ? "open" : JsonStr(body, "status");
    c.convoy_conversation_id =
        JsonStr(JsonMember(body, "additional_attributes"), "convoy_conversation_id");
    c.id = next_id_++;
    conversations_.push_back(c);
    return Json(200, Obj([&](W& w) {
                  Int(w, "id", c.id);
                  Int(w, "account_id", account_);
                  Int(w, "inbox_id", c.inbox_id);
                  Str(w, "status", c.status);
                }));
  }
  if (route == "GET /conversations/{id}/messages") {
    if (!find_conv(id)) return NotFound();
    std::vector<Message> mine;
    for (const auto& msg : messages_) {
      if (msg.conversation_id == id) mine.push_back(msg);
    }
    if (mine.size() > 20) mine.erase(mine.begin(), mine.end() - 20);  // the newest 20
    return Json(200, Obj([&](W& w) {
                  w.Key("meta");
                  w.StartObject();
                  w.EndObject();
                  w.Key("payload");
                  w.StartArray();
                  for (const auto& msg : mine) MessageJson(w, msg, account_, inbox_);
                  w.EndArray();
                }));
  }
  if (route == "POST /conversations/{id}/messages") {
    if (!find_conv(id)) return NotFound();
    Message msg;
    msg.content = JsonStr(body, "content");
    if (msg.content.empty()) return Unprocessable("Content can't be blank", "content");
    msg.message_type =
        JsonStr(body, "message_type").empty() ? "outgoing" : JsonStr(body, "message_type");
    if (msg.message_type != "incoming" && msg.message_type != "outgoing")
      return Unprocessable("Message type is invalid", "message_type");
    msg.is_private = JsonMember(body, "private").IsTrue();
    msg.source_id = JsonStr(body, "source_id");
    msg.conversation_id = id;
    msg.created_at = NowSeconds();
    msg.id = next_id_++;
    messages_.push_back(msg);
    to_post_.push_back(msg.id);  // the inbox's webhook, as a job
    cv_.notify_all();
    const int delay = delay_next_ms_;
    delay_next_ms_ = 0;
    if (delay > 0) cv_.wait_for(lock, std::chrono::milliseconds(delay), [&] { return release_; });
    return Json(200, Obj([&](W& w) {
                  Int(w, "id", msg.id);
                  Str(w, "content", msg.content);
                  Int(w, "conversation_id", msg.conversation_id);
                  Int(w, "message_type", msg.message_type == "incoming" ? 0 : 1);
                  w.Key("private");
                  w.Bool(msg.is_private);
                  Str(w, "source_id", msg.source_id);
                  Int(w, "created_at", msg.created_at);
                }));
  }
  return NotFound();
}

}  // namespace convoy::fake
