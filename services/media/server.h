#pragma once
// GET /media/{name}: a stored file, streamed with its Content-Type (a document as an attachment
// named by its stored name), to a caller with the media
// token, or to anyone with a signed link to that file that has not expired
// (?expires=<unix s>&sig=<hex HMAC-SHA256(link secret, "<name>.<expires>")>, convoy/crypto.h); a
// tampered or expired link is 403. The name must be the generator's own ("<sha256 hex>.<allowed extension>"); anything
// else is 404, and a name that resolves (symlinks followed) outside the media folder, or is a
// symlink at all, is 403: never bytes from outside the folder.
#include <string>

#include "convoy/http.h"

namespace convoy::media {

struct ServeSettings {
  std::string media_dir;
  std::string token;        // Authorization: Bearer <token>
  bool open_for_local = false;  // no token needed (--media_public, for a local run only)
  std::string link_secret;      // signed links (CONVOY_MEDIA_LINK_SECRET); empty: links refused
};

HttpResponse ServeMedia(const HttpRequest& request, const ServeSettings& settings);

}  // namespace convoy::media
