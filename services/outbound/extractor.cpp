#include "extractor.h"

#include <glog/logging.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "convoy/http.h"
#include "convoy/log.h"
#include "convoy/metrics.h"
#include "convoy/rapidjson_util.h"
#include "convoy/topology.h"
#include "sinks.h"

namespace convoy::outbound {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

Counter& Calls(const char* outcome) {
  return DefaultRegistry().GetCounter("convoy_outbound_extractions_total",
                                      "Extractor requests by outcome.",
                                      std::string("outcome=\"") + outcome + "\"");
}

int64_t SystemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr const char* kSystemPrompt =
    "You read a WhatsApp conversation between a business (assistant) and a customer (user) and "
    "extract details the "
    "customer gave. Answer with the JSON object the schema describes: for each field, the "
    "customer's own words "
    "(normalised: a name in its usual capitalisation, an email address as written), or null when "
    "the customer did "
    "not clearly say it. Never guess and never invent. A field with a list of values takes one of "
    "them exactly, or "
    "null. Fields:";

}  // namespace

Result<ExtractorSet> ParseExtractors(const std::string& json, const SchemaRegistry& schemas) {
  rapidjson::Document d;
  Status valid = schemas.ValidateAs("extractors", 1, json, &d);
  if (!valid.ok()) return Status(Code::kInvalidArgument, "extractors: " + valid.message());
  ExtractorSet set;
  for (const auto& e : d["extractors"].GetArray()) {
    ExtractorConfig c;
    c.name = JsonStr(e, "name");
    c.url = JsonStr(e, "url");
    c.model = JsonStr(e, "model");
    c.allow_private = JsonMember(e, "allow_private").IsTrue();
    if (JsonMember(e, "timeout_seconds").IsInt())
      c.timeout = std::chrono::seconds(JsonMember(e, "timeout_seconds").GetInt());
    const std::string key = JsonStr(e, "key");
    if (!key.empty()) {
      auto resolved = ResolveSecret(key);
      if (!resolved.ok()) {
        return Status(Code::kInvalidArgument,
                      "extractor '" + c.name + "': key: " + resolved.status().message());
      }
      c.key = *resolved;
    }
    Status dest = CheckDestination(c.url, c.allow_private);
    if (dest.code() == Code::kRejected) {
      return Status(Code::kInvalidArgument, "extractor '" + c.name + "': " + dest.message() +
                                                "; set \"allow_private\": true on it to allow it");
    }
    if (!set.extractors.emplace(c.name, c).second) {
      return Status(Code::kInvalidArgument, "extractor '" + c.name + "' is defined twice");
    }
  }
  return set;
}

Result<ExtractorSet> LoadExtractors(const std::string& path, const SchemaRegistry& schemas) {
  if (path.empty()) return ExtractorSet{};
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(Code::kNotFound, "extractors file not found: " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto set = ParseExtractors(ss.str(), schemas);
  if (!set.ok()) return Status(set.status().code(), path + ": " + set.status().message());
  return set;
}

std::string BuildChatRequest(const ExtractorConfig& config, const std::string& command_body) {
  rapidjson::Document cmd;
  cmd.Parse(command_body.c_str(), command_body.size());
  const auto& fields = JsonMember(cmd, "fields");
  const auto& messages = JsonMember(cmd, "messages");
  std::string system = kSystemPrompt;
  if (fields.IsArray()) {
    for (const auto& f : fields.GetArray())
      system += "\n- " + JsonStr(f, "name") + ": " + JsonStr(f, "description");
  }
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("model");
  w.String(config.model);
  w.Key("temperature");
  w.Int(0);
  w.Key("messages");
  w.StartArray();
  w.StartObject();
  w.Key("role");
  w.String("system");
  w.Key("content");
  w.String(system);
  w.EndObject();
  if (messages.IsArray()) {
    for (const auto& m : messages.GetArray()) {
      w.StartObject();
      w.Key("role");
      w.String(JsonStr(m, "role"));
      w.Key("content");
      w.String(JsonStr(m, "content"));
      w.EndObject();
    }
  }
  w.EndArray();
  w.Key("response_format");
  w.StartObject();
  w.Key("type");
  w.String("json_schema");
  w.Key("json_schema");
  w.StartObject();
  w.Key("name");
  w.String("extracted_fields");
  w.Key("strict");
  w.Bool(true);
  w.Key("schema");
  w.StartObject();
  w.Key("type");
  w.String("object");
  w.Key("additionalProperties");
  w.Bool(false);
  w.Key("properties");
  w.StartObject();
  if (fields.IsArray()) {
    for (const auto& f : fields.GetArray()) {
      const std::string name = JsonStr(f, "name");
      w.Key(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
      w.StartObject();
      w.Key("type");
      w.StartArray();
      w.String("string");
      w.String("null");
      w.EndArray();
      w.Key("description");
      w.String(JsonStr(f, "description"));
      const auto& values = JsonMember(f, "values");
      if (values.IsArray() && !values.Empty()) {
        w.Key("enum");
        w.StartArray();
        for (const auto& v : values.GetArray()) w.String(v.GetString());
        w.Null();
        w.EndArray();
      }
      w.EndObject();
    }
  }
  w.EndObject();
  w.Key("required");
  w.StartArray();
  if (fields.IsArray()) {
    for (const auto& f : fields.GetArray()) w.String(JsonStr(f, "name"));
  }
  w.EndArray();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return std::string(b.GetString(), b.GetSize());
}

Result<std::map<std::string, std::string>> ParseChatResponse(
    const std::string& body, const std::vector<std::string>& asked) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  if (d.HasParseError() || !d.IsObject())
    return Status(Code::kInvalidArgument, "the answer is not JSON");
  const auto& choices = JsonMember(d, "choices");
  if (!choices.IsArray() || choices.Empty())
    return Status(Code::kInvalidArgument, "the answer has no choices");
  const auto& message = JsonMember(choices[0], "message");
  const auto& refusal = JsonMember(message, "refusal");
  if (refusal.IsString() && refusal.GetStringLength() > 0) {
    return Status(Code::kInvalidArgument, std::string("the model refused: ") + refusal.GetString());
  }
  const std::string content = JsonStr(message, "content");
  rapidjson::Document fields;
  fields.Parse(content.c_str(), content.size());
  if (fields.HasParseError() || !fields.IsObject()) {
    return Status(Code::kInvalidArgument,
                  "the message content is not a JSON object: " + content.substr(0, 200));
  }
  std::map<std::string, std::string> out;
  for (const auto& name : asked) {
    const auto& v = JsonMember(fields, name.c_str());
    if (v.IsString() && v.GetStringLength() > 0)
      out[name] = std::string(v.GetString(), std::min<size_t>(v.GetStringLength(), 1024));
  }
  return out;
}

Extractor::Extractor(const SchemaRegistry& schemas, const ExtractorSet& extractors,
                     EventPublisher events, std::function<int64_t()> now)
    : schemas_(schemas),
      extractors_(extractors),
      events_(std::move(events)),
      now_(now ? std::move(now) : SystemNow) {}

Disposition Extractor::Answer(const Delivery& d, const std::string& request_id,
                              const std::map<std::string, std::string>& fields,
                              const std::string& error, int attempt) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("request_id");
  w.String(request_id);
  w.Key("fields");
  w.StartObject();
  for (const auto& [k, v] : fields) {
    w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v);
  }
  w.EndObject();
  if (!error.empty()) {
    w.Key("error");
    w.String(error.substr(0, 1000));
  }
  w.Key("attempts");
  w.Int(attempt);
  w.EndObject();
  std::string members(b.GetString(), b.GetSize());
  members = members.substr(1, members.size() - 2);  // EventFor wraps the members in the envelope
  Status s = events_(EventFor(d, "outbound.extracted", members));
  if (!s.ok()) return Disposition::Retry("could not publish outbound.extracted: " + s.ToString());
  Calls(!error.empty() ? "failed" : fields.empty() ? "nothing_found" : "found").Inc();
  return Disposition::Ack();
}

Disposition Extractor::Handle(const Delivery& d) {
  LogCtx ctx = CommandContext(d, "outbound.extract");
  if (auto invalid = RefuseInvalid(d, schemas_, ctx)) return *invalid;
  rapidjson::Document cmd;
  cmd.Parse(d.body.c_str(), d.body.size());
  const std::string request_id = JsonStr(cmd, "request_id"), name = JsonStr(cmd, "extractor");
  const int64_t deadline = JsonMember(cmd, "deadline_at").GetInt64();
  const int attempt = std::max(1, std::atoi(d.Header(headers::kAttempt).c_str()));
  std::vector<std::string> asked;
  for (const auto& f : cmd["fields"].GetArray()) asked.push_back(JsonStr(f, "name"));
  const ExtractorConfig* config = extractors_.Find(name);
  if (!config) {
    LOG(WARNING) << ctx << "event=extractor_not_configured extractor=" << name;
    return Answer(d, request_id, {},
                  "no extractor '" + name + "' is configured (--extractors_file)", attempt);
  }
  const int64_t now = now_();
  if (now >= deadline) {
    LOG(WARNING) << ctx << "event=extraction_timed_out extractor=" << name
                 << " attempts=" << attempt - 1;
    return Answer(d, request_id, {}, "no answer before the deadline", attempt - 1);
  }
  Status dest = CheckDestination(config->url, config->allow_private);
  if (dest.code() == Code::kRejected) return Answer(d, request_id, {}, dest.message(), attempt);
  HttpClientRequest req;
  req.method = "POST";
  req.url = config->url;
  req.public_only = !config->allow_private;
  req.body = BuildChatRequest(*config, d.body);
  if (!config->key.empty()) req.headers["Authorization"] = "Bearer " + config->key;
  req.timeout =
      std::chrono::milliseconds(std::min<int64_t>(config->timeout.count(), deadline - now) * 1000);
  auto started = std::chrono::steady_clock::now();
  auto resp = dest.ok() ? HttpFetch(req) : Result<HttpResponse>(dest);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  std::string why;
  if (resp.ok() && resp->status == 200) {
    auto fields = ParseChatResponse(resp->body, asked);
    if (!fields.ok()) {
      LOG(WARNING) << ctx << "event=extractor_unusable_answer extractor=" << name
                   << " error=" << fields.status().message();
      return Answer(d, request_id, {}, "unusable answer: " + fields.status().message(), attempt);
    }
    LOG(INFO) << ctx << "event=extracted extractor=" << name << " found=" << fields->size()
              << " ms=" << ms;
    return Answer(d, request_id, *fields, "", attempt);
  }
  if (resp.ok() && resp->status != 429 && resp->status < 500) {
    LOG(WARNING) << ctx << "event=extractor_refused extractor=" << name
                 << " status=" << resp->status;
    return Answer(d, request_id, {},
                  "the extractor answered HTTP " + std::to_string(resp->status) + ": " +
                      resp->body.substr(0, 200),
                  attempt);
  }
  why = resp.ok() ? "HTTP " + std::to_string(resp->status) : resp.status().ToString();
  // Transient: again after a short delay while the deadline allows, else the person is asked.
  if (now_() + 1 < deadline) {
    LOG(WARNING) << ctx << "event=extractor_retry extractor=" << name << " attempt=" << attempt
                 << " error=" << why;
    Calls("retried").Inc();
    return Disposition::Retry("extractor: " + why, 1000);
  }
  return Answer(d, request_id, {}, "failed until the deadline: " + why, attempt);
}

}  // namespace convoy::outbound
