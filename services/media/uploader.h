#pragma once
// media.upload: a stored file to a destination named in the configuration (a commerce platform's
// image upload: POST multipart/form-data), the returned URL recorded in media_uploads, and
// media.uploaded (or media.upload_failed) emitted, once per dedupe key.
//
// The attempt is claimed in PostgreSQL before the call, so two deliveries of one command never
// upload at once; the request carries "Idempotency-Key: <dedupe key>", so a retry after a crash
// between the destination's answer and the record is recognised by a destination that honours
// it (the usual contract of such APIs). Errors: HTTP 5xx, 408, 429, timeouts and connection
// errors retry through the delay tiers; other 4xx, an unknown destination or a missing file fail
// at once; the last attempt fails and parks the command.
#include <chrono>
#include <map>
#include <string>

#include "convoy/amqp.h"
#include "convoy/events.h"
#include "convoy/json.h"
#include "convoy/pg.h"

namespace convoy::media {

struct UploadSettings {
  std::string media_dir;
  std::map<std::string, std::string> destinations;  // name → URL
  std::string token;                                // Authorization: Bearer, when set
  std::string field = "file";                       // the form field of the file
  std::chrono::milliseconds timeout{60000};
  int max_attempts = 5;
  // Destinations may be on loopback or private addresses (local runs and tests); else each call
  // goes only to a public address, the one that was checked (convoy/ssrf.h).
  bool allow_private = false;
};

// "name=url,name=url" → map; an error names the bad item.
Result<std::map<std::string, std::string>> ParseDestinations(const std::string& spec);

// A multipart/form-data body with one file part; *content_type gets the boundary.
std::string MultipartBody(const std::string& field, const std::string& filename,
                          const std::string& mime_type, const std::string& bytes,
                          std::string* content_type);

class Uploader {
 public:
  Uploader(PgConnection& db, const SchemaRegistry& schemas, UploadSettings settings,
           EventPublisher events);
  Disposition Handle(const Delivery& d);

 private:
  Disposition Fail(const Delivery& d, const std::string& stored, const std::string& destination,
                   const std::string& reason, bool dead_letter);
  Status Emit(const std::string& schema, const std::string& fields, const Delivery& d);
  PgConnection& db_;
  const SchemaRegistry& schemas_;
  UploadSettings settings_;
  EventPublisher events_;
};

}  // namespace convoy::media
