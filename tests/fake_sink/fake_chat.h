#pragma once
// A fake of an OpenAI-compatible chat-completions endpoint (an extractor), owned by tests: it
// records every request and answers from a function of the request (the fields to return as the
// message content, an HTTP status, a delay). Checks the bearer key and the request's shape
// (model, messages, response_format json_schema) and answers 400 when they are wrong.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "convoy/http.h"

namespace convoy::fake {

class FakeChat {
 public:
  struct Answer {
    int status = 200;
    std::map<std::string, std::string> fields;  // the JSON object returned as the message content
    int delay_ms = 0;
  };
  // The last user message of a request -> the answer.
  using Script = std::function<Answer(const std::string& last_user_message)>;
  explicit FakeChat(std::string key);
  ~FakeChat();
  Status Start();
  std::string url() const;  // http://127.0.0.1:port/v1/chat/completions
  void SetScript(Script script);
  std::vector<std::string> Requests() const;  // request bodies, in order
  bool WaitFor(size_t count, std::chrono::milliseconds deadline) const;
  void ReleaseDelayed();

 private:
  HttpResponse Handle(const HttpRequest& r);
  std::string key_;
  std::unique_ptr<HttpServer> server_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  Script script_;
  std::vector<std::string> requests_;
  bool release_ = false;
};

}  // namespace convoy::fake
