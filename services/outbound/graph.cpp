#include "graph.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <vector>

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

size_t Utf8Length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

namespace {

using rapidjson::Value;

std::string Str(const Value& obj, const char* key) {
  if (!obj.IsObject()) return "";
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString(), it->value.GetStringLength())
                                                        : "";
}

const Value& Member(const Value& obj, const char* key) {
  static const Value kNull;
  if (!obj.IsObject()) return kNull;
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? kNull : it->value;
}

// A string member's length in characters within [min, max]; "where" names it in the error.
Status Length(const Value& obj, const char* key, size_t min, size_t max, const std::string& where) {
  const Value& v = Member(obj, key);
  if (v.IsNull() && min == 0) return Status::Ok();
  if (!v.IsString()) return Status(Code::kInvalidArgument, where + " must be a string");
  size_t n = Utf8Length(std::string(v.GetString(), v.GetStringLength()));
  if (n < min || n > max) {
    return Status(Code::kInvalidArgument, where + " has " + std::to_string(n) + " characters; Meta allows " +
                                              std::to_string(min) + " to " + std::to_string(max));
  }
  return Status::Ok();
}

Status CheckButtons(const Value& in) {
  const Value& buttons = Member(Member(in, "action"), "buttons");
  if (!buttons.IsArray() || buttons.Empty() || buttons.Size() > 3) {
    return Status(Code::kInvalidArgument, "reply buttons: Meta allows 1 to 3 buttons, got " +
                                              std::to_string(buttons.IsArray() ? buttons.Size() : 0));
  }
  std::vector<std::string> ids;
  for (rapidjson::SizeType i = 0; i < buttons.Size(); ++i) {
    const Value& reply = Member(buttons[i], "reply");
    std::string where = "button " + std::to_string(i + 1);
    Status s = Length(reply, "title", 1, 20, where + " title");
    if (s.ok()) s = Length(reply, "id", 1, 256, where + " id");
    if (!s.ok()) return s;
    std::string id = Str(reply, "id");
    if (std::find(ids.begin(), ids.end(), id) != ids.end()) {
      return Status(Code::kInvalidArgument, where + " id '" + id + "' is used twice");
    }
    ids.push_back(id);
  }
  return Length(Member(in, "body"), "text", 1, 1024, "interactive body text");
}

Status CheckList(const Value& in) {
  const Value& action = Member(in, "action");
  Status s = Length(action, "button", 1, 20, "list button text");
  if (!s.ok()) return s;
  const Value& sections = Member(action, "sections");
  if (!sections.IsArray() || sections.Empty() || sections.Size() > 10) {
    return Status(Code::kInvalidArgument, "list: Meta allows 1 to 10 sections");
  }
  size_t rows = 0;
  for (const auto& section : sections.GetArray()) {
    const Value& r = Member(section, "rows");
    if (!r.IsArray() || r.Empty()) return Status(Code::kInvalidArgument, "list: every section needs rows");
    for (const auto& row : r.GetArray()) {
      ++rows;
      std::string where = "list row " + std::to_string(rows);
      s = Length(row, "title", 1, 24, where + " title");
      if (s.ok()) s = Length(row, "id", 1, 200, where + " id");
      if (s.ok()) s = Length(row, "description", 0, 72, where + " description");
      if (!s.ok()) return s;
    }
  }
  if (rows > 10) return Status(Code::kInvalidArgument, "list: Meta allows at most 10 rows, got " + std::to_string(rows));
  return Length(Member(in, "body"), "text", 1, 4096, "interactive body text");
}

// Meta's limits for the message kinds convoy sends.
Status CheckLimits(const Value& message) {
  std::string type = Str(message, "type");
  if (type == "text") return Length(Member(message, "text"), "body", 1, 4096, "text body");
  if (type == "interactive") {
    const Value& in = Member(message, "interactive");
    Status s = Length(Member(in, "header"), "text", 0, 60, "interactive header text");
    if (s.ok()) s = Length(Member(in, "footer"), "text", 0, 60, "interactive footer text");
    if (!s.ok()) return s;
    std::string kind = Str(in, "type");
    if (kind == "button") return CheckButtons(in);
    if (kind == "list") return CheckList(in);
    return Status(Code::kInvalidArgument, "interactive type '" + kind + "' is not one convoy sends");
  }
  if (type == "image") {
    const Value& image = Member(message, "image");
    if (Str(image, "id").empty() && Str(image, "link").empty()) {
      return Status(Code::kInvalidArgument, "image needs a media id or a link");
    }
    return Length(image, "caption", 0, 1024, "image caption");
  }
  if (type == "template") {
    const Value& t = Member(message, "template");
    if (Str(t, "name").empty() || Str(Member(t, "language"), "code").empty()) {
      return Status(Code::kInvalidArgument, "template needs a name and a language code");
    }
    return Status::Ok();
  }
  return Status(Code::kInvalidArgument, "message type '" + type + "' is not one convoy sends");
}

}  // namespace

Result<std::string> BuildSendRequest(const std::string& command_body, const std::string& callback) {
  rapidjson::Document cmd;
  cmd.Parse(command_body.c_str(), command_body.size());
  if (cmd.HasParseError() || !cmd.IsObject() || !cmd.HasMember("message") || !cmd["message"].IsObject() ||
      !cmd.HasMember("to") || !cmd["to"].IsString()) {
    return Status(Code::kInvalidArgument, "outbound.send has no message or recipient");
  }
  Status limits = CheckLimits(cmd["message"]);
  if (!limits.ok()) return limits;
  if (callback.size() > 512) return Status(Code::kInvalidArgument, "callback data over Meta's 512 characters");
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
    if (key == "messaging_product" || key == "to" || key == "recipient_type" || key == "biz_opaque_callback_data") {
      continue;
    }
    w.Key(key.c_str(), static_cast<rapidjson::SizeType>(key.size()));
    m.value.Accept(w);
  }
  if (!callback.empty()) {
    w.Key("biz_opaque_callback_data");
    w.String(callback.c_str(), static_cast<rapidjson::SizeType>(callback.size()));
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
