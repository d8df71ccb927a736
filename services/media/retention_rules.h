#pragma once
// What media prunes (convoy/retention.h) after --retention_days: settled uploads, and stored
// media with their files. Identical bytes sent under two media ids share one file: it is removed
// with the last row that names it. Quota counts and charges matter for their day (a charge also
// for a redelivery of its fetch): kept 8 days, or --retention_days if shorter.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "convoy/retention.h"
#include "verify.h"

namespace convoy::media {

inline std::vector<PruneRule> RetentionRules(const std::string& media_dir, int history_days) {
  const int64_t age = history_days * int64_t{86400};
  const int64_t quota_age = std::min(history_days, 8) * int64_t{86400};
  auto remove_files = [media_dir](PgConnection& db,
                                  const std::vector<std::string>& media_ids) -> Status {
    const std::string array = PgTextArray(media_ids);
    auto names = db.Exec(
        "SELECT DISTINCT stored_name FROM media_objects m WHERE media_id = ANY($1::text[]) AND NOT "
        "EXISTS "
        "(SELECT 1 FROM media_objects o WHERE o.stored_name = m.stored_name AND NOT (o.media_id = "
        "ANY($1::text[])))",
        {array});
    if (!names.ok()) return names.status();
    for (size_t i = 0; i < names->size(); ++i) {
      const std::string name = names->get(i, 0);
      if (!IsStoredName(name)) continue;  // never a path of someone else's making
      if (::unlink((media_dir + "/" + name).c_str()) != 0 && errno != ENOENT) {
        return Status(Code::kUnavailable, "cannot remove " + name + ": " + std::strerror(errno));
      }
    }
    return Status::Ok();
  };
  return {
      {"media_uploads",
       "updated_at < now() - $1::interval AND status <> 'uploading'",
       age,
       "dedupe_key",
       {}},
      // A flow may keep its files longer (a checklist's evidence) or shorter: its keep_days wins.
      {"media_objects",
       "stored_at < now() - coalesce(make_interval(days => keep_days), $1::interval)", age,
       "media_id", remove_files},
      {"media_quota_usage", "day < (now() - $1::interval)::date", quota_age, "bucket", {}},
      {"media_quota_charges", "charged_at < now() - $1::interval", quota_age, "media_id", {}},
  };
}

}  // namespace convoy::media
