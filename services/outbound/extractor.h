#pragma once
// Extractors: OpenAI-compatible chat-completions endpoints a flow may name (`extractor`) to find
// the fields an answer's rules could not (--extractors_file, proto-schemas/extractors.v1.json).
// Conversation never calls one under its lock: it writes an outbound.extract command (the fields
// still missing, the conversation's recent messages within a token budget, a deadline) and goes on
// when outbound.extracted comes back. Outbound calls the endpoint with a JSON schema of the fields,
// retries 429/5xx/transport failures until the deadline, and always answers: the fields found, or
// an error (then the person is asked instead).
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "convoy/amqp.h"
#include "convoy/events.h"
#include "convoy/json.h"
#include "convoy/status.h"

namespace convoy::outbound {

struct ExtractorConfig {
  std::string name, url, model, key;
  std::chrono::seconds timeout{10};
  bool allow_private = false;
};

struct ExtractorSet {
  std::map<std::string, ExtractorConfig> extractors;
  const ExtractorConfig* Find(const std::string& name) const {
    auto it = extractors.find(name);
    return it == extractors.end() ? nullptr : &it->second;
  }
};

// An empty path is an empty set (a flow's extractor then answers "not configured" at once).
// Problems are kInvalidArgument naming the extractor: an unresolvable key, an internal address.
Result<ExtractorSet> LoadExtractors(const std::string& path, const SchemaRegistry& schemas);
Result<ExtractorSet> ParseExtractors(const std::string& json, const SchemaRegistry& schemas);

// The chat-completions request for an outbound.extract body (pure): a system message naming the
// fields, the conversation's messages, and response_format json_schema (each field a string, one
// of its values when it has some, or null), temperature 0.
std::string BuildChatRequest(const ExtractorConfig& config, const std::string& command_body);
// The fields a chat-completions answer gives (choices[0].message.content, a JSON object): those
// asked for with a non-empty string value. kInvalidArgument when the answer is not usable.
Result<std::map<std::string, std::string>> ParseChatResponse(const std::string& body,
                                                             const std::vector<std::string>& asked);

class Extractor {
 public:
  Extractor(const SchemaRegistry& schemas, const ExtractorSet& extractors, EventPublisher events,
            std::function<int64_t()> now = nullptr);
  Disposition Handle(const Delivery& d);

 private:
  Disposition Answer(const Delivery& d, const std::string& request_id,
                     const std::map<std::string, std::string>& fields, const std::string& error,
                     int attempt);
  const SchemaRegistry& schemas_;
  const ExtractorSet& extractors_;
  EventPublisher events_;
  std::function<int64_t()> now_;
};

}  // namespace convoy::outbound
