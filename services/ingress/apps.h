#pragma once
// Which Meta app a webhook came to, and what verifies it. Meta signs each webhook with the secret
// of the app whose subscription delivered it, and one deployment may serve numbers of several apps
// (an agency, a solution provider). Each app has a path of its own, /webhook/{app}, with its own
// app secret (and, during a rotation, the one being replaced) and its own verify token; /webhook
// is the app `default`. The numbers registry's `app` says which app a number's updates must come
// through (conversation refuses the others as `wrong_app`).
//
// The apps file (--apps_file) names the apps besides `default`, one a line, fields separated by
// spaces or tabs:
//
//   # app   app secret                   verify token                   previous app secret
//   acme    env:CONVOY_APP_SECRET_ACME   env:CONVOY_VERIFY_TOKEN_ACME
//   globex  file:/run/secrets/globex/app-secret  file:/run/secrets/globex/verify-token
//   file:/run/secrets/globex/previous
//
// app: ^[a-z0-9][a-z0-9_-]{0,63}$ (number.v1's `app`), each once, never `default` (that one's
// secret and token are CONVOY_APP_SECRET / --app_secret_file and CONVOY_VERIFY_TOKEN /
// --verify_token_file, as before). The secrets are references, env:NAME or file:/absolute/path,
// never the values: the file itself is configuration, not a secret. The fourth field is there only
// while the app's secret is being rotated. Blank lines and lines starting with `#` are skipped.
// Every error names the file and the line, never a secret's value.
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "convoy/status.h"

namespace convoy::ingress {

constexpr const char* kDefaultApp = "default";

struct AppCredentials {
  std::string app_secret, verify_token;
  // During a rotation of the app secret, the one being replaced: webhooks signed with either are
  // accepted (Meta signs with the new one from the moment it is saved). Empty: none.
  std::string previous_app_secret = "";
};
// By app name. Bounded by configuration: the requests of a name not here are refused (404).
using AppSet = std::map<std::string, AppCredentials>;

// ^[a-z0-9][a-z0-9_-]{0,63}$
bool ValidAppName(std::string_view name);

// The app a request path names: "/webhook" is `default`, "/webhook/{app}" that app (whether or not
// it is configured). nullopt for any other path, or a name that cannot be an app's.
std::optional<std::string> AppOfPath(std::string_view path);

// The apps file's text, each reference resolved; `source` names it in errors ("apps.txt:3: ...").
Result<AppSet> ParseApps(std::string_view text, const std::string& source);
Result<AppSet> LoadAppsFile(const std::string& path);

// Two apps never share an app secret (current or previous): a webhook one app signed would verify
// on the other's path. kInvalidArgument names the two apps, never the secret.
Status CheckSecretsDistinct(const AppSet& apps);

}  // namespace convoy::ingress
