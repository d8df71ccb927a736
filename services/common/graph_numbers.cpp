#include "convoy/graph_numbers.h"

#include <glog/logging.h>
#include <unistd.h>

#include "convoy/config.h"

namespace convoy {

namespace {

constexpr const char* kNumberGraph =
    "SELECT graph_token_ref, coalesce(graph_version, '') FROM numbers WHERE phone_number_id = $1";

// v<1-3 digits>.<digit>, as the registry's CHECK says.
bool IsVersion(const std::string& s) {
  const size_t dot = s.find('.');
  if (s.size() < 4 || s[0] != 'v' || dot == std::string::npos || dot < 2 || dot > 4 ||
      dot + 2 != s.size()) {
    return false;
  }
  for (size_t i = 1; i < s.size(); ++i) {
    if (i != dot && (s[i] < '0' || s[i] > '9')) return false;
  }
  return true;
}

}  // namespace

std::string WithGraphVersion(const std::string& base_url, const std::string& version) {
  if (version.empty()) return base_url;
  const size_t slash = base_url.rfind('/');
  const size_t scheme = base_url.find("://");
  const bool has_path =
      slash != std::string::npos && (scheme == std::string::npos || slash > scheme + 2);
  if (has_path && IsVersion(base_url.substr(slash + 1)))
    return base_url.substr(0, slash + 1) + version;
  return base_url + "/" + version;
}

std::shared_ptr<SecretRefs> DeploymentGraphSecrets(
    const std::string& graph_token_file, std::chrono::steady_clock::duration check_every) {
  auto secrets = std::make_shared<SecretRefs>(check_every);
  if (graph_token_file.empty()) return secrets;
  std::string path = graph_token_file;
  if (path[0] != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof(cwd)) != nullptr) path = std::string(cwd) + "/" + path;
  }
  secrets->Alias(kDeploymentGraphTokenRef, "file:" + path);
  return secrets;
}

GraphNumbers::GraphNumbers(PgConnection& db, Settings settings)
    : db_(db), settings_(std::move(settings)) {
  if (settings_.secrets) return;
  settings_.secrets = std::make_shared<SecretRefs>();
  if (!settings_.token.empty()) settings_.secrets->Set(kDeploymentGraphTokenRef, settings_.token);
}

Result<GraphTarget> GraphNumbers::For(const std::string& phone_number_id) {
  const auto now = std::chrono::steady_clock::now();
  auto it = rows_.find(phone_number_id);
  if (it == rows_.end() || now - it->second.read_at >= settings_.ttl) {
    auto r = db_.Exec(kNumberGraph, {phone_number_id});
    if (!r.ok()) {
      LOG_EVERY_N(WARNING, 100) << "service=" << ServiceName()
                                << " event=number_graph_unread error=" << r.status().ToString();
      // What was read before stands; a number never read is not called with a guessed token.
      if (it == rows_.end()) {
        return Status(Code::kUnavailable,
                      "the numbers registry cannot be read: " + r.status().ToString());
      }
    } else {
      if (rows_.size() >= 10000 && it == rows_.end()) rows_.clear();
      Row row{kDeploymentGraphTokenRef, "", now};
      if (!r->empty()) row = {r->get(0, 0), r->get(0, 1), now};
      it = rows_.insert_or_assign(phone_number_id, row).first;
    }
  }
  auto token = settings_.secrets->Resolve(it->second.token_ref);
  if (!token.ok()) return Status(token.status().code(), "graph token " + token.status().message());
  return GraphTarget{WithGraphVersion(settings_.base_url, it->second.version), *token};
}

}  // namespace convoy
