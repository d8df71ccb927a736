#include "graph.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace convoy::outbound {

const char* GraphErrorClassName(GraphErrorClass c) {
  switch (c) {
    case GraphErrorClass::kRateLimited: return "rate_limited";
    case GraphErrorClass::kTransient: return "transient";
    case GraphErrorClass::kPermanent: return "permanent";
  }
  return "unknown";
}

GraphErrorClass ClassifyGraphError(int http_status, int code) {
  switch (code) {
    case 130429:  // throughput
    case 131056:  // pair rate
    case 80007:   // WABA rate limit
    case 4:       // app-level call limit
      return GraphErrorClass::kRateLimited;
    case 1:
    case 2:
    case 131000:
    case 131016:
    case 131057:
    case 133004:
      return GraphErrorClass::kTransient;
    case 0:
      break;  // no Graph error: decide by HTTP status
    default:
      return GraphErrorClass::kPermanent;  // 131047, 131026, 131051, 131048, 100, 190, ...
  }
  if (http_status == 429 || http_status >= 500 || http_status == 408) return GraphErrorClass::kTransient;
  return GraphErrorClass::kPermanent;
}

GraphError ParseGraphError(int http_status, const std::string& body) {
  GraphError e;
  e.http_status = http_status;
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  if (!d.HasParseError() && d.IsObject() && d.HasMember("error") && d["error"].IsObject()) {
    const auto& err = d["error"];
    if (err.HasMember("code") && err["code"].IsInt()) e.code = err["code"].GetInt();
    if (err.HasMember("message") && err["message"].IsString()) e.message = err["message"].GetString();
  }
  if (e.message.empty()) e.message = "HTTP " + std::to_string(http_status);
  e.klass = ClassifyGraphError(http_status, e.code);
  return e;
}

Result<std::string> BuildSendRequest(const std::string& command_body) {
  rapidjson::Document cmd;
  cmd.Parse(command_body.c_str(), command_body.size());
  if (cmd.HasParseError() || !cmd.IsObject() || !cmd.HasMember("message") || !cmd["message"].IsObject() ||
      !cmd.HasMember("to") || !cmd["to"].IsString()) {
    return Status(Code::kInvalidArgument, "outbound.send has no message or recipient");
  }
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("messaging_product");
  w.String("whatsapp");
  w.Key("recipient_type");
  w.String("individual");
  w.Key("to");
  w.String(cmd["to"].GetString());
  for (const auto& m : cmd["message"].GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    if (key == "messaging_product" || key == "to" || key == "recipient_type") continue;
    w.Key(key.c_str(), static_cast<rapidjson::SizeType>(key.size()));
    m.value.Accept(w);
  }
  w.EndObject();
  return std::string(b.GetString(), b.GetSize());
}

Result<std::string> ParseSendResponse(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("messages") || !d["messages"].IsArray() ||
      d["messages"].Empty() || !d["messages"][0].IsObject() || !d["messages"][0].HasMember("id") ||
      !d["messages"][0]["id"].IsString()) {
    return Status(Code::kInvalidArgument, "send response without messages[0].id");
  }
  return std::string(d["messages"][0]["id"].GetString());
}

}  // namespace convoy::outbound
