#pragma once
// media.fetch: metadata, download (refreshing an expired URL once), verification, atomic
// store under a content-hash name, a row in media_objects, and media.stored / media.failed.
#include <chrono>
#include <functional>
#include <string>

#include "convoy/amqp.h"
#include "convoy/events.h"
#include "convoy/json.h"
#include "convoy/pg.h"

namespace convoy::media {

struct FetchSettings {
  std::string graph_base_url;
  std::string graph_token;
  std::string media_dir;
  size_t max_image_bytes = 5 * 1024 * 1024;
  std::chrono::milliseconds timeout{60000};
};


class Fetcher {
 public:
  Fetcher(PgConnection& db, const SchemaRegistry& schemas, FetchSettings settings, EventPublisher events);
  Disposition Handle(const Delivery& d);

 private:
  struct Stored {
    std::string name, sha256, mime_type;
    int64_t size = 0;
  };
  Result<Stored> Fetch(const std::string& media_id, const std::string& phone_number_id);
  Result<std::string> StoreFile(const std::string& bytes, const std::string& sha256, const std::string& ext);
  Status Emit(const std::string& schema, const std::string& fields, const Delivery& d);
  PgConnection& db_;
  const SchemaRegistry& schemas_;
  FetchSettings settings_;
  EventPublisher events_;
};

}  // namespace convoy::media
