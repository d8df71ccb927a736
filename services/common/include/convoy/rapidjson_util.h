#pragma once
// Small accessors for RapidJSON values. Include only from .cpp files that already include
// RapidJSON (it is a heavy header: keep it out of other headers).
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>

namespace convoy {

// obj[key] as a string (integers are printed), or "" when missing or of another type.
inline std::string JsonStr(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) return "";
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return "";
  if (it->value.IsString()) return std::string(it->value.GetString(), it->value.GetStringLength());
  if (it->value.IsInt64()) return std::to_string(it->value.GetInt64());
  return "";
}

// obj[key], or a null value when missing.
inline const rapidjson::Value& JsonMember(const rapidjson::Value& obj, const char* key) {
  static const rapidjson::Value kNull;
  if (!obj.IsObject()) return kNull;
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? kNull : it->value;
}

// The value as compact JSON text.
inline std::string JsonText(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  v.Accept(w);
  return std::string(b.GetString(), b.GetSize());
}

// "malformed JSON at offset N: reason" for a document that failed to parse.
inline std::string JsonParseError(const rapidjson::Document& doc) {
  return "malformed JSON at offset " + std::to_string(doc.GetErrorOffset()) + ": " +
         rapidjson::GetParseError_En(doc.GetParseError());
}

}  // namespace convoy
