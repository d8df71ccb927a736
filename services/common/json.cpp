#include "convoy/json.h"

#include <dirent.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/pointer.h>
#include <rapidjson/schema.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include "convoy/rapidjson_util.h"

namespace convoy {

struct SchemaRegistry::Impl {
  // RapidJSON 1.1.0's schema regex ("pattern") keeps its match state inside the shared
  // SchemaDocument, so two threads validating at once corrupt it: validation is serialized.
  std::mutex mu;
  std::map<std::string, std::unique_ptr<rapidjson::SchemaDocument>> schemas;  // "name@version"
  std::map<std::string, std::unique_ptr<rapidjson::Document>> sources;        // the same, as JSON
};

Result<std::vector<JsonFile>> ReadJsonFiles(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return Status(Code::kNotFound, "folder not found: " + dir);
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 5 && n.compare(n.size() - 5, 5, ".json") == 0) names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  std::vector<JsonFile> files;
  for (const auto& n : names) {
    std::ifstream in(dir + "/" + n, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in) return Status(Code::kInvalidArgument, dir + "/" + n + ": cannot be read");
    files.push_back({n.substr(0, n.size() - 5), dir + "/" + n, ss.str()});
  }
  return files;
}

SchemaRegistry::SchemaRegistry() : impl_(new Impl) {}
SchemaRegistry::~SchemaRegistry() = default;

size_t SchemaRegistry::size() const { return impl_->schemas.size(); }

Status SchemaRegistry::LoadDir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return Status(Code::kNotFound, "schema folder not found: " + dir);
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) names.emplace_back(e->d_name);
  closedir(d);
  for (const auto& name : names) {
    // <schema>.v<N>.json
    if (name.size() < 8 || name.substr(name.size() - 5) != ".json") continue;
    std::string stem = name.substr(0, name.size() - 5);
    auto v = stem.rfind(".v");
    if (v == std::string::npos) continue;
    std::string schema = stem.substr(0, v);
    int version = std::atoi(stem.c_str() + v + 2);
    if (version <= 0) continue;
    std::ifstream in(dir + "/" + name);
    std::stringstream ss;
    ss << in.rdbuf();
    rapidjson::Document doc;
    doc.Parse(ss.str().c_str());
    if (doc.HasParseError()) {
      return Status(Code::kInvalidArgument, dir + "/" + name + ": offset " +
                                                std::to_string(doc.GetErrorOffset()) + ": " +
                                                rapidjson::GetParseError_En(doc.GetParseError()));
    }
    impl_->schemas[schema + "@" + std::to_string(version)] =
        std::make_unique<rapidjson::SchemaDocument>(doc);
    auto source = std::make_unique<rapidjson::Document>();
    source->CopyFrom(doc, source->GetAllocator());
    impl_->sources[schema + "@" + std::to_string(version)] = std::move(source);
  }
  if (impl_->schemas.empty()) return Status(Code::kNotFound, "no schemas in " + dir);
  return Status::Ok();
}

namespace {
// For a failed "required": the members the rule names that the object lacks.
std::string MissingMembers(const rapidjson::Document* source, const char* rule,
                           const rapidjson::Document& doc, const char* where) {
  if (source == nullptr) return "";
  const rapidjson::Value* schema = rapidjson::Pointer(rule).Get(*source);
  const rapidjson::Value* object = rapidjson::Pointer(where).Get(doc);
  if (schema == nullptr || object == nullptr || !object->IsObject() || !schema->IsObject() ||
      !schema->HasMember("required") || !(*schema)["required"].IsArray()) {
    return "";
  }
  std::string missing;
  for (const auto& name : (*schema)["required"].GetArray()) {
    if (name.IsString() && !object->HasMember(name.GetString()))
      missing += (missing.empty() ? "" : ", ") + std::string(name.GetString());
  }
  return missing.empty() ? "" : ": missing " + missing;
}

Status ValidateDoc(const rapidjson::SchemaDocument& schema, const rapidjson::Document* source,
                   const rapidjson::Document& doc, const std::string& name) {
  rapidjson::SchemaValidator validator(schema);
  if (doc.Accept(validator)) return Status::Ok();
  rapidjson::StringBuffer where, rule;
  validator.GetInvalidDocumentPointer().StringifyUriFragment(where);
  validator.GetInvalidSchemaPointer().StringifyUriFragment(rule);
  std::string keyword = validator.GetInvalidSchemaKeyword();
  return Status(
      Code::kInvalidArgument,
      "does not match schema " + name + ": at '" + std::string(where.GetString()) + "' fails '" +
          keyword + "' (" + rule.GetString() + ")" +
          (keyword == "required" ? MissingMembers(source, rule.GetString(), doc, where.GetString())
                                 : ""));
}
}  // namespace

Status SchemaRegistry::Validate(std::string_view body) const {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError()) return Status(Code::kInvalidArgument, JsonParseError(doc));
  if (!doc.IsObject() || !doc.HasMember("schema") || !doc["schema"].IsString() ||
      !doc.HasMember("version") || !doc["version"].IsInt()) {
    return Status(Code::kInvalidArgument, "body does not name its schema and version");
  }
  std::string key =
      std::string(doc["schema"].GetString()) + "@" + std::to_string(doc["version"].GetInt());
  auto it = impl_->schemas.find(key);
  if (it == impl_->schemas.end()) return Status(Code::kInvalidArgument, "unknown schema " + key);
  std::lock_guard<std::mutex> lock(impl_->mu);
  return ValidateDoc(*it->second, impl_->sources.at(key).get(), doc, key);
}

Status SchemaRegistry::ValidateAs(const std::string& schema, int version, std::string_view body,
                                  rapidjson::Document* parsed) const {
  std::string key = schema + "@" + std::to_string(version);
  auto it = impl_->schemas.find(key);
  if (it == impl_->schemas.end()) return Status(Code::kNotFound, "unknown schema " + key);
  rapidjson::Document local;
  rapidjson::Document& doc = parsed ? *parsed : local;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError()) return Status(Code::kInvalidArgument, JsonParseError(doc));
  std::lock_guard<std::mutex> lock(impl_->mu);
  return ValidateDoc(*it->second, impl_->sources.at(key).get(), doc, key);
}

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

}  // namespace convoy
