#include "fake_chat.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "convoy/json.h"
#include "convoy/rapidjson_util.h"

namespace convoy::fake {

FakeChat::FakeChat(std::string key) : key_(std::move(key)) {}

FakeChat::~FakeChat() {
  ReleaseDelayed();
  if (server_) server_->Stop();
}

Status FakeChat::Start() {
  server_ = std::make_unique<HttpServer>(HttpServerOptions{"127.0.0.1", 0, 4 << 20});
  server_->Route("POST", "/v1/chat/completions",
                 [this](const HttpRequest& r) { return Handle(r); });
  return server_->Start();
}

std::string FakeChat::url() const {
  return "http://127.0.0.1:" + std::to_string(server_->port()) + "/v1/chat/completions";
}

void FakeChat::SetScript(Script script) {
  std::lock_guard<std::mutex> lock(mu_);
  script_ = std::move(script);
}

std::vector<std::string> FakeChat::Requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

bool FakeChat::WaitFor(size_t count, std::chrono::milliseconds deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, deadline, [&] { return requests_.size() >= count; });
}

void FakeChat::ReleaseDelayed() {
  std::lock_guard<std::mutex> lock(mu_);
  release_ = true;
  cv_.notify_all();
}

HttpResponse FakeChat::Handle(const HttpRequest& r) {
  auto error = [](int status, const std::string& message) {
    return HttpResponse{status,
                        "application/json",
                        R"({"error":{"message":")" + JsonEscape(message) + R"("}})",
                        {},
                        ""};
  };
  auto auth = r.headers.find("authorization");
  if (auth == r.headers.end() || auth->second != "Bearer " + key_) return error(401, "bad key");
  rapidjson::Document d;
  d.Parse(r.body.c_str(), r.body.size());
  if (d.HasParseError() || !d.IsObject() || JsonStr(d, "model").empty() ||
      !JsonMember(d, "messages").IsArray() ||
      JsonStr(JsonMember(JsonMember(d, "response_format"), "json_schema"), "name").empty()) {
    return error(400, "expected model, messages and response_format.json_schema");
  }
  std::string last;
  for (const auto& m : d["messages"].GetArray()) {
    if (JsonStr(m, "role") == "user") last = JsonStr(m, "content");
  }
  Answer answer;
  {
    std::unique_lock<std::mutex> lock(mu_);
    requests_.push_back(r.body);
    cv_.notify_all();
    if (script_) answer = script_(last);
    if (answer.delay_ms > 0) {
      cv_.wait_for(lock, std::chrono::milliseconds(answer.delay_ms), [&] { return release_; });
    }
  }
  if (answer.status != 200) return error(answer.status, "scripted failure");
  rapidjson::StringBuffer content;
  rapidjson::Writer<rapidjson::StringBuffer> w(content);
  w.StartObject();
  for (const auto& [k, v] : answer.fields) {
    w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v);
  }
  w.EndObject();
  const std::string body =
      R"({"id":"chatcmpl-fake","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":")" +
      JsonEscape(std::string(content.GetString(), content.GetSize())) +
      R"(","refusal":null},"finish_reason":"stop"}]})";
  return HttpResponse{200, "application/json", body, {}, ""};
}

}  // namespace convoy::fake
