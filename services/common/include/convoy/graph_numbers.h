#pragma once
// Which Graph token and API version each business number calls Meta with (issue 27): the numbers
// registry's graph_token_ref (env:NAME or file:/path, resolved by SecretRefs) and graph_version
// (deploy/postgres/0021_number_graph_version.sql; NULL: the deployment's, the version in
// --graph_base_url). A number the registry does not have calls as the deployment does: its base
// URL and the token env:CONVOY_GRAPH_TOKEN names. A number's token is never another's: when its
// reference cannot be resolved the answer is an error naming it ("graph token env:X not set").
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "convoy/pg.h"
#include "convoy/secret_refs.h"
#include "convoy/status.h"

namespace convoy {

// The deployment's Graph token, as the registry names it (the demo number's, deploy/numbers/).
constexpr const char* kDeploymentGraphTokenRef = "env:CONVOY_GRAPH_TOKEN";

// `base_url` (https://graph.facebook.com/v24.0) with its last path segment, when it is a version,
// replaced by `version` ("v27.0"); the version appended when it has none. "" keeps it.
std::string WithGraphVersion(const std::string& base_url, const std::string& version);

// The references a service resolves numbers' tokens with: env:CONVOY_GRAPH_TOKEN means what
// `graph_token_file` (--graph_token_file) holds when one is given, read again when it changes,
// else the environment's; files are looked at, at most, every `check_every`.
std::shared_ptr<SecretRefs> DeploymentGraphSecrets(const std::string& graph_token_file,
                                                   std::chrono::steady_clock::duration check_every);

// Where one number's call goes and what it carries.
struct GraphTarget {
  std::string base_url;  // version included, no trailing /
  std::string token;
};

class GraphNumbers {
 public:
  struct Settings {
    std::string base_url;                 // the deployment's, version included
    std::shared_ptr<SecretRefs> secrets;  // shared by a service's threads (file checks, aliases)
    std::chrono::seconds ttl{30};         // how long a number's row is kept before it is read again
    // When `secrets` is empty: what env:CONVOY_GRAPH_TOKEN means in the one made here (tests, and
    // services handed the deployment's token alone); other references are read as ever.
    std::string token;
  };
  // db: used by one thread at a time, as PgConnection is.
  GraphNumbers(PgConnection& db, Settings settings);
  // The number's target. kNotFound / kInvalidArgument "graph token <ref> ...": its token cannot be
  // resolved (its calls must wait; nothing goes with another token); kUnavailable: the registry
  // cannot be read and the number was not read before.
  Result<GraphTarget> For(const std::string& phone_number_id);

 private:
  struct Row {
    std::string token_ref, version;
    std::chrono::steady_clock::time_point read_at;
  };
  PgConnection& db_;
  Settings settings_;
  std::map<std::string, Row>
      rows_;  // bounded: cleared past 10,000 (a deployment serves far fewer numbers)
};

}  // namespace convoy
