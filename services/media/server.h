#pragma once
// GET /media/{name}: a stored file, streamed with its Content-Type (a document as an attachment
// named by its stored name), to a caller with the media token, to a named API token's holder
// (convoy/tokens.h: a global one reads any file, a tenant's only that tenant's), or to anyone with
// a signed link to that file that has not expired
// (?expires=<unix s>&sig=<hex HMAC-SHA256(link secret, "<name>.<expires>")>, convoy/crypto.h); a
// tampered or expired link is 403. The name must be the generator's own ("<sha256 hex>.<allowed
// extension>"); anything else is 404, and a name that resolves (symlinks followed) outside the
// media folder, or is a symlink at all, is 403: never bytes from outside the folder. Another
// tenant's file is 404 to a tenant's token, the same answer as a file that does not exist.
#include <functional>
#include <memory>
#include <string>

#include "convoy/http.h"
#include "convoy/status.h"
#include "convoy/tokens.h"

namespace convoy::media {

struct ServeSettings {
  std::string media_dir;
  std::string token;            // Authorization: Bearer <token>: reads any file
  bool open_for_local = false;  // no token needed (--media_public, for a local run only)
  std::string link_secret;      // signed links (CONVOY_MEDIA_LINK_SECRET); empty: links refused
  // Named API tokens (--tokens_file), any role; null or empty: the media token alone.
  std::shared_ptr<TokenStore> tokens;
  // Whether the stored file `name` came through a number of `tenant` (owners.h); asked for a
  // tenant's token alone. An error answers 503. Unset: a tenant's token reads nothing.
  std::function<Result<bool>(const std::string& name, const std::string& tenant)> owned_by;
};

HttpResponse ServeMedia(const HttpRequest& request, const ServeSettings& settings);

}  // namespace convoy::media
