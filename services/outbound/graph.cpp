#include "graph.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <vector>

#include "convoy/crypto.h"

namespace convoy::outbound {

const char* GraphErrorClassName(GraphErrorClass c) {
  switch (c) {
    case GraphErrorClass::kRateLimited:
      return "rate_limited";
    case GraphErrorClass::kTransient:
      return "transient";
    case GraphErrorClass::kPermanent:
      return "permanent";
  }
  return "unknown";
}

// Meta's error codes that convoy knows, with what they mean for a send (Cloud API error codes,
// 2025-26). Codes not here are classified by HTTP status and counted by code.
const GraphErrorInfo* KnownGraphError(int code) {
  using C = GraphErrorClass;
  static const GraphErrorInfo kKnown[] = {
      {130429, C::kRateLimited, 0, false, "throughput limit of the business number"},
      {131056, C::kRateLimited, 0, false, "pair rate limit: too many messages to this user"},
      {80007, C::kRateLimited, 0, false, "WhatsApp Business Account rate limit"},
      {4, C::kRateLimited, 0, false, "app-level call limit"},
      {1, C::kTransient, 0, false, "unknown Graph error"},
      {2, C::kTransient, 0, false, "Graph service temporarily unavailable"},
      {131000, C::kTransient, 0, false, "something went wrong at Meta"},
      {131016, C::kTransient, 0, false, "service overloaded"},
      {131057, C::kTransient, 0, false, "account in maintenance mode"},
      {133004, C::kTransient, 0, false, "server temporarily unavailable"},
      // Paused for low quality: sent once the pause ends (3 or 6 h) or its status update comes,
      // within the send's retry budget.
      {132015, C::kTransient, 600000, false, "template paused for low quality"},
      {131047, C::kPermanent, 0, false,
       "outside the 24-hour customer service window (a template is needed)"},
      {131026, C::kPermanent, 0, false, "message undeliverable"},
      {131051, C::kPermanent, 0, false, "unsupported message type"},
      {131048, C::kPermanent, 0, false, "spam rate limit"},
      {131049, C::kPermanent, 0, false, "per-user marketing limit: not retried within 24 h"},
      {131050, C::kPermanent, 0, false, "the user stopped marketing messages"},
      {131042, C::kPermanent, 0, true, "business eligibility or payment issue"},
      {133010, C::kPermanent, 0, true, "phone number not registered on the Cloud API"},
      {131031, C::kPermanent, 0, true, "business account locked"},
      {368, C::kPermanent, 0, true, "temporarily blocked for policy violations"},
      {130497, C::kPermanent, 0, true,
       "business account restricted from messaging users in this country"},
      {131052, C::kPermanent, 0, false, "media download error"},
      {131053, C::kPermanent, 0, false, "media upload error"},
      {131062, C::kPermanent, 0, false,
       "this message type cannot be sent to a business-scoped user ID"},
      {131063, C::kPermanent, 0, false, "business-scoped user ID not valid for this business"},
      {131064, C::kPermanent, 0, false, "business-scoped user ID recipient not reachable"},
      {130472, C::kPermanent, 0, false, "the user's number is part of a Meta experiment"},
      {137000, C::kPermanent, 0, false, "identity key hash mismatch"},
      {132000, C::kPermanent, 0, false, "template parameter count mismatch"},
      // Thread control (Conversation Routing), as partners forwarding Meta's answers report it.
      {2494191, C::kPermanent, 0, false,
       "thread control not permitted (take is the escalation partner's)"},
      {132001, C::kPermanent, 0, false, "template does not exist in that language"},
      {132005, C::kPermanent, 0, false, "template text too long once filled in"},
      {132007, C::kPermanent, 0, false, "template format character policy violated"},
      {132012, C::kPermanent, 0, false, "template parameter format mismatch"},
      {132016, C::kPermanent, 0, true, "template disabled"},
      {100, C::kPermanent, 0, false, "invalid parameter"},
      {190, C::kPermanent, 0, true, "access token expired or invalid"},
  };
  for (const auto& k : kKnown) {
    if (k.code == code) return &k;
  }
  return nullptr;
}

bool PausesNumber(int code) { return code == 131031 || code == 133010; }

GraphErrorClass ClassifyGraphError(int http_status, int code) {
  if (const GraphErrorInfo* known = KnownGraphError(code)) return known->klass;
  if (code != 0 && http_status >= 400 && http_status < 500 && http_status != 408 &&
      http_status != 429) {
    return GraphErrorClass::kPermanent;  // a Graph error about this request that convoy does not
                                         // know
  }
  if (http_status == 429 || http_status >= 500 || http_status == 408)
    return GraphErrorClass::kTransient;
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
    if (err.HasMember("message") && err["message"].IsString())
      e.message = err["message"].GetString();
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
  return it != obj.MemberEnd() && it->value.IsString()
             ? std::string(it->value.GetString(), it->value.GetStringLength())
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
    return Status(Code::kInvalidArgument, where + " has " + std::to_string(n) +
                                              " characters; Meta allows " + std::to_string(min) +
                                              " to " + std::to_string(max));
  }
  return Status::Ok();
}

Status CheckButtons(const Value& in) {
  const Value& buttons = Member(Member(in, "action"), "buttons");
  if (!buttons.IsArray() || buttons.Empty() || buttons.Size() > 3) {
    return Status(Code::kInvalidArgument,
                  "reply buttons: Meta allows 1 to 3 buttons, got " +
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
    if (!r.IsArray() || r.Empty())
      return Status(Code::kInvalidArgument, "list: every section needs rows");
    for (const auto& row : r.GetArray()) {
      ++rows;
      std::string where = "list row " + std::to_string(rows);
      s = Length(row, "title", 1, 24, where + " title");
      if (s.ok()) s = Length(row, "id", 1, 200, where + " id");
      if (s.ok()) s = Length(row, "description", 0, 72, where + " description");
      if (!s.ok()) return s;
    }
  }
  if (rows > 10)
    return Status(Code::kInvalidArgument,
                  "list: Meta allows at most 10 rows, got " + std::to_string(rows));
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
    return Status(Code::kInvalidArgument,
                  "interactive type '" + kind + "' is not one convoy sends");
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

std::string ReadReceiptRequest(const std::string& wamid) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("messaging_product");
  w.String("whatsapp");
  w.Key("status");
  w.String("read");
  w.Key("message_id");
  w.String(wamid.c_str(), static_cast<rapidjson::SizeType>(wamid.size()));
  w.Key("typing_indicator");
  w.StartObject();
  w.Key("type");
  w.String("text");
  w.EndObject();
  w.EndObject();
  return std::string(b.GetString(), b.GetSize());
}

Result<std::string> BuildSendRequest(const std::string& command_body, const std::string& callback,
                                     const StoredMediaLinks& links) {
  rapidjson::Document cmd;
  cmd.Parse(command_body.c_str(), command_body.size());
  if (cmd.HasParseError() || !cmd.IsObject() || !cmd.HasMember("message") ||
      !cmd["message"].IsObject()) {
    return Status(Code::kInvalidArgument, "outbound.send has no message");
  }
  if (Str(cmd["message"], "type") == "image" && cmd["message"].HasMember("image") &&
      cmd["message"]["image"].IsObject() && cmd["message"]["image"].HasMember("media")) {
    Value& image = cmd["message"]["image"];
    const std::string name = Str(image, "media");
    if (links.base_url.empty() || links.secret.empty()) {
      return Status(Code::kInvalidArgument,
                    "an image by stored media needs convoy-media's public URL and the link secret "
                    "(--media_public_url, CONVOY_MEDIA_LINK_SECRET)");
    }
    if (name.size() < 66 || name.find_first_not_of("0123456789abcdef") != 64 || name[64] != '.') {
      return Status(Code::kInvalidArgument, "image.media is not a stored file's name");
    }
    const std::string link = MediaLink(links.base_url, links.secret, name, links.expires);
    image.RemoveMember("media");
    image.AddMember(
        "link",
        Value(link.c_str(), static_cast<rapidjson::SizeType>(link.size()), cmd.GetAllocator()),
        cmd.GetAllocator());
  }
  const Value& message = cmd["message"];
  if (Str(message, "type") == "typing_indicator") {
    // A command written before outbound.send's mark_read: the same call.
    const std::string wamid = Str(message, "message_id");
    if (wamid.empty())
      return Status(Code::kInvalidArgument, "typing_indicator needs the message_id it answers");
    return ReadReceiptRequest(wamid);
  }
  Status limits = CheckLimits(message);
  if (!limits.ok()) return limits;
  // A phone number goes as `to`; a business-scoped user ID (a user who shares no number) as
  // `recipient`. When both are known `to` wins, as on Meta's side.
  const bool to_phone =
      cmd.HasMember("to") && cmd["to"].IsString() && cmd["to"].GetStringLength() > 0;
  const bool to_bsuid = cmd.HasMember("recipient") && cmd["recipient"].IsString() &&
                        cmd["recipient"].GetStringLength() > 0;
  if (!to_phone && !to_bsuid)
    return Status(Code::kInvalidArgument, "outbound.send names no recipient (to or recipient)");

  if (callback.size() > 512)
    return Status(Code::kInvalidArgument, "callback data over Meta's 512 characters");
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("messaging_product");
  w.String("whatsapp");
  w.Key("recipient_type");
  w.String("individual");
  w.Key(to_phone ? "to" : "recipient");
  w.String(cmd[to_phone ? "to" : "recipient"].GetString());
  for (const auto& m : cmd["message"].GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    if (key == "messaging_product" || key == "to" || key == "recipient" ||
        key == "recipient_type" || key == "biz_opaque_callback_data") {
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
