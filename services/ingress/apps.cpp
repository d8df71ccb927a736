#include "apps.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "convoy/config.h"
#include "webhook.h"

namespace convoy::ingress {

namespace {

constexpr std::string_view kWebhookPath = "/webhook";
constexpr std::streamoff kMaxFileBytes = 1 << 20;

bool ValidEnvName(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    if (!letter && (i == 0 || c < '0' || c > '9')) return false;
  }
  return true;
}

// A secret named by `ref`, env:NAME or file:/absolute/path, read through LoadSecret. The errors
// repeat the reference only once it is known to be one: anything else may be the secret itself.
Result<std::string> Resolve(std::string_view ref, const std::string& where) {
  const std::string r(ref);
  if (r.rfind("env:", 0) == 0 && ValidEnvName(ref.substr(4))) {
    auto value = LoadSecret(r.substr(4), "");
    if (!value.ok())
      return Status(Code::kInvalidArgument,
                    where + r + ": the environment variable is unset or empty");
    return value;
  }
  if (r.rfind("file:/", 0) == 0) {
    auto value = LoadSecret("", r.substr(5));
    if (!value.ok())
      return Status(Code::kInvalidArgument, where + r + ": the file cannot be read or is empty");
    return value;
  }
  return Status(Code::kInvalidArgument, where +
                                            "not env:NAME or file:/absolute/path (a reference to "
                                            "the secret, never the secret itself)");
}

}  // namespace

bool ValidAppName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '-'))) return false;
  }
  return true;
}

std::optional<std::string> AppOfPath(std::string_view path) {
  if (path == kWebhookPath) return std::string(kDefaultApp);
  if (path.size() <= kWebhookPath.size() + 1 ||
      path.substr(0, kWebhookPath.size()) != kWebhookPath || path[kWebhookPath.size()] != '/') {
    return std::nullopt;
  }
  std::string_view name = path.substr(kWebhookPath.size() + 1);
  if (!ValidAppName(name)) return std::nullopt;
  return std::string(name);
}

Result<AppSet> ParseApps(std::string_view text, const std::string& source) {
  AppSet apps;
  std::map<std::string, int> line_of;
  std::istringstream lines{std::string(text)};
  std::string line;
  for (int n = 1; std::getline(lines, line); ++n) {
    std::istringstream in(line);
    std::vector<std::string> fields;
    for (std::string f; in >> f;) fields.push_back(f);
    if (fields.empty() || fields[0][0] == '#') continue;
    const std::string at = source + ":" + std::to_string(n) + ": ";
    if (fields.size() < 3 || fields.size() > 4) {
      return Status(Code::kInvalidArgument,
                    at +
                        "expected: app, app secret, verify token and, during a rotation, the "
                        "previous app secret (" +
                        std::to_string(fields.size()) + " fields)");
    }
    const std::string& name = fields[0];
    if (!ValidAppName(name)) {
      return Status(Code::kInvalidArgument,
                    at + "an app name is 1-64 of a-z, 0-9, _ and -, starting with a letter or "
                         "digit");
    }
    if (name == kDefaultApp) {
      return Status(Code::kInvalidArgument,
                    at + "the app default is /webhook's: its secret and token are "
                         "CONVOY_APP_SECRET and CONVOY_VERIFY_TOKEN (or their --*_file flags)");
    }
    if (line_of.count(name)) {
      return Status(Code::kInvalidArgument, at + "the app " + name + " is already on line " +
                                                std::to_string(line_of[name]));
    }
    AppCredentials app;
    auto secret = Resolve(fields[1], at + name + "'s app secret: ");
    if (!secret.ok()) return secret.status();
    auto token = Resolve(fields[2], at + name + "'s verify token: ");
    if (!token.ok()) return token.status();
    app.app_secret = *secret;
    app.verify_token = *token;
    if (fields.size() == 4) {
      auto previous = Resolve(fields[3], at + name + "'s previous app secret: ");
      if (!previous.ok()) return previous.status();
      app.previous_app_secret = *previous;
    }
    line_of[name] = n;
    apps[name] = std::move(app);
  }
  return apps;
}

Result<AppSet> LoadAppsFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in)
    return Status(Code::kInvalidArgument, "cannot read " + path + ": " + std::strerror(errno));
  const std::streamoff size = in.tellg();
  if (size < 0 || size > kMaxFileBytes)
    return Status(Code::kInvalidArgument, path + ": over 1 MiB; is it the apps file?");
  std::string text(static_cast<size_t>(size), '\0');
  in.seekg(0);
  in.read(text.data(), size);
  return ParseApps(text, path);
}

Status CheckSecretsDistinct(const AppSet& apps) {
  std::vector<std::pair<const std::string*, const std::string*>> secrets;  // app, secret
  for (const auto& [name, app] : apps) {
    for (const std::string* s : {&app.app_secret, &app.previous_app_secret}) {
      if (s->empty()) continue;
      for (const auto& [other, seen] : secrets) {
        if (*other != name && ConstantTimeEquals(*seen, *s)) {
          return Status(Code::kInvalidArgument,
                        "the apps " + *other + " and " + name +
                            " have the same app secret: a webhook signed for one would be "
                            "accepted as the other's");
        }
      }
      secrets.emplace_back(&name, s);
    }
  }
  return Status::Ok();
}

}  // namespace convoy::ingress
