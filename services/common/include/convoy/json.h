#pragma once
// JSON Schema validation of broker messages (RapidJSON's SchemaValidator, draft-04). Every
// message body names its schema and version: {"schema": "inbound.message", "version": 1, ...};
// the schema lives in proto-schemas/<schema>.v<version>.json.
#include <rapidjson/fwd.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "convoy/status.h"

namespace convoy {

// A folder of JSON definitions (flows, checklists, numbers): each *.json file, sorted by name,
// with its name without ".json" (`stem`) and its text. kNotFound when the folder does not exist;
// kInvalidArgument naming a file that cannot be read.
struct JsonFile {
  std::string stem, path, text;
};
Result<std::vector<JsonFile>> ReadJsonFiles(const std::string& dir);

class SchemaRegistry {
 public:
  SchemaRegistry();
  ~SchemaRegistry();
  // Loads every *.v<N>.json in dir. A file that is not a valid schema is an error naming it.
  Status LoadDir(const std::string& dir);
  // Validates a body against the schema it names. kInvalidArgument says what and where.
  Status Validate(std::string_view body) const;
  // Validates against an explicit schema (flows, configuration). With `parsed`, the document
  // that was validated is left there for the caller to read (parsed once).
  Status ValidateAs(const std::string& schema, int version, std::string_view body,
                    rapidjson::Document* parsed = nullptr) const;
  size_t size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Escapes a string for inclusion in JSON (without the quotes).
std::string JsonEscape(std::string_view s);

}  // namespace convoy
