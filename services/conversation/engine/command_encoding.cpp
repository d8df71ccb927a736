// The bodies of the rows the transaction writes to the outbox: the commands (outbound.send,
// media.fetch, media.upload, outbound.deliver, outbound.extract) and events (flow.completed,
// result.due), each with the envelope every message carries.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "convoy/topology.h"
#include "engine/processor_internal.h"

namespace convoy::conversation::processor_internal {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Key(Writer& w, const std::string& k) {
  w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
}

// The members every command and event carries.
void Envelope(Writer& w, const char* schema, const Parsed& p, const std::string& dedupe) {
  w.Key("schema");
  w.String(schema);
  w.Key("version");
  w.Int(1);
  w.Key("correlation_id");
  w.String(p.correlation_id);
  w.Key("dedupe_key");
  w.String(dedupe);
  w.Key("conversation_key");
  w.String(p.conversation_key);
  w.Key("phone_number_id");
  w.String(p.phone_number_id);
}

// An outbound.send's envelope and address, up to its message: to the phone when the person shared
// one (Meta's `to`), else to their BSUID (`recipient`).
void SendHead(Writer& w, const Parsed& p, const std::string& dedupe, int64_t last_inbound_at) {
  Envelope(w, "outbound.send", p, dedupe);
  if (!p.received_at.empty()) {
    w.Key("received_at");
    w.String(p.received_at);
  }
  if (!p.reply_phone.empty()) {
    w.Key("to");
    w.String(p.reply_phone);
  } else {
    w.Key("recipient");
    w.String(p.reply_user_id);
  }
  if (last_inbound_at > 0) {
    w.Key("last_inbound_at");
    w.Int64(last_inbound_at);
  }
}

// mark_read: the user's message this send answers first, to be marked read with the typing
// indicator by outbound before the send (empty: none).
std::string SendBody(const Parsed& p, const std::string& dedupe, const Effect& e,
                     int64_t last_inbound_at, const std::string& mark_read = "") {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  SendHead(w, p, dedupe, last_inbound_at);
  if (!mark_read.empty()) {
    w.Key("mark_read");
    w.String(mark_read);
  }
  w.Key("message");
  w.StartObject();
  if (e.kind == Effect::Kind::kSendButtons) {
    // Graph's reply-buttons message: at most 3 buttons, titles of at most 20 characters.
    w.Key("type");
    w.String("interactive");
    w.Key("interactive");
    w.StartObject();
    w.Key("type");
    w.String("button");
    w.Key("body");
    w.StartObject();
    w.Key("text");
    w.String(e.text);
    w.EndObject();
    w.Key("action");
    w.StartObject();
    w.Key("buttons");
    w.StartArray();
    for (const auto& [id, title] : e.buttons) {
      w.StartObject();
      w.Key("type");
      w.String("reply");
      w.Key("reply");
      w.StartObject();
      w.Key("id");
      w.String(id);
      w.Key("title");
      w.String(title);
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    w.EndObject();
  } else {
    w.Key("type");
    w.String("text");
    w.Key("text");
    w.StartObject();
    w.Key("body");
    w.String(e.text);
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return b.GetString();
}

// An approved template (the only message allowed outside the 24-hour window), its body's
// parameters in order.
std::string TemplateBody(const Parsed& p, const std::string& dedupe, const Effect& e,
                         int64_t last_inbound_at) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  SendHead(w, p, dedupe, last_inbound_at);
  w.Key("template_category");
  w.String("utility");
  w.Key("message");
  w.StartObject();
  w.Key("type");
  w.String("template");
  w.Key("template");
  w.StartObject();
  w.Key("name");
  w.String(e.template_name);
  w.Key("language");
  w.StartObject();
  w.Key("code");
  w.String(e.template_language);
  w.EndObject();
  w.Key("components");
  w.StartArray();
  w.StartObject();
  w.Key("type");
  w.String("body");
  w.Key("parameters");
  w.StartArray();
  for (const auto& param : e.template_params) {
    w.StartObject();
    w.Key("type");
    w.String("text");
    w.Key("text");
    w.String(param);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return b.GetString();
}

// What a photo (or a document, video, voice note) is, for whoever receives it: its type and a
// document's file name (made safe by the engine).
void MediaMembers(Writer& w, const Photo& p) {
  if (!p.mime_type.empty()) {
    w.Key("mime_type");
    w.String(p.mime_type);
  }
  if (!p.filename.empty()) {
    w.Key("filename");
    w.String(p.filename);
  }
}

std::string CompletedBody(const Parsed& p, const std::string& dedupe, const Effect& e) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Envelope(w, "flow.completed", p, dedupe);
  if (!p.tenant.empty()) {
    w.Key("tenant");
    w.String(p.tenant);
  }
  if (!p.reply_phone.empty()) {
    w.Key("wa_id");
    w.String(p.reply_phone);
  }
  if (!p.reply_user_id.empty()) {
    w.Key("user_id");
    w.String(p.reply_user_id);
  }
  w.Key("flow");
  w.String(e.flow);
  w.Key("outcome");
  w.String(e.outcome);
  w.Key("fields");
  w.StartObject();
  for (const auto& [k, v] : e.fields) {
    Key(w, k);
    w.String(v);
  }
  w.EndObject();
  w.Key("photos");
  w.StartObject();
  for (const auto& [field, list] : e.photos) {
    Key(w, field);
    w.StartArray();
    for (const auto& photo : list) {
      w.StartObject();
      w.Key("media_id");
      w.String(photo.media_id);
      w.Key("sent_at");
      w.Int64(photo.at);
      if (!photo.stored_name.empty()) {
        w.Key("stored_name");
        w.String(photo.stored_name);
      }
      MediaMembers(w, photo);
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  w.EndObject();
  return b.GetString();
}

std::string UploadBody(const Parsed& p, const std::string& dedupe, const Effect& e) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Envelope(w, "media.upload", p, dedupe);
  w.Key("stored_name");
  w.String(e.stored_name);
  w.Key("destination");
  w.String(e.destination);
  w.EndObject();
  return b.GetString();
}

void PhotosMember(Writer& w, const std::map<std::string, std::vector<Photo>>& photos) {
  w.Key("photos");
  w.StartArray();
  for (const auto& [field, list] : photos) {
    for (const auto& photo : list) {
      w.StartObject();
      w.Key("field");
      Key(w, field);
      w.Key("media_id");
      w.String(photo.media_id);
      w.Key("sent_at");
      w.Int64(photo.at);
      if (!photo.stored_name.empty()) {
        w.Key("stored_name");
        w.String(photo.stored_name);
      }
      MediaMembers(w, photo);
      if (!photo.missing.empty()) {
        w.Key("missing");
        w.String(photo.missing);
      }
      w.EndObject();
    }
  }
  w.EndArray();
}

std::string DueBody(const Parsed& p, const std::string& dedupe, const Effect& e) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Envelope(w, "result.due", p, dedupe);
  w.Key("result_id");
  w.String(e.result.id);
  w.EndObject();
  return b.GetString();
}

}  // namespace

std::string AnswersJson(const std::map<std::string, std::string>& fields,
                        const std::map<std::string, std::vector<Photo>>& photos) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  for (const auto& [field, value] : fields) {
    if (field.size() < 2 || field[0] != 'q' ||
        field.find_first_not_of("0123456789", 1) != std::string::npos)
      continue;
    Key(w, field);
    w.StartObject();
    w.Key("answer");
    w.String(value);
    if (auto note = fields.find(field + "_note"); note != fields.end()) {
      w.Key("note");
      w.String(note->second);
    }
    w.Key("photos");
    w.StartArray();
    auto it = photos.find(field);
    if (it != photos.end()) {
      for (const auto& ph : it->second) {
        w.StartObject();
        w.Key("media_id");
        w.String(ph.media_id);
        if (!ph.stored_name.empty()) {
          w.Key("stored_name");
          w.String(ph.stored_name);
        }
        MediaMembers(w, ph);
        w.EndObject();
      }
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndObject();
  return b.GetString();
}

std::string FetchBody(const Parsed& p, const std::string& dedupe, const Effect& e) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Envelope(w, "media.fetch", p, dedupe);
  w.Key("media_id");
  w.String(e.media_id);
  if (!e.mime_type.empty()) {
    w.Key("mime_type");
    w.String(e.mime_type);
  }
  if (!e.sha256.empty()) {
    w.Key("sha256");
    w.String(e.sha256);
  }
  if (e.keep_days > 0) {
    w.Key("keep_days");
    w.Int(e.keep_days);
  }
  if (!e.kinds.empty()) {
    w.Key("kinds");
    w.StartArray();
    for (const auto& k : e.kinds) w.String(k);
    w.EndArray();
  }
  w.EndObject();
  return b.GetString();
}

std::string DeliverBody(const Parsed& p, const std::string& dedupe, const Effect& e,
                        const std::string& conversation) {
  const PendingResult& r = e.result;
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Envelope(w, "outbound.deliver", p, dedupe);
  w.Key("result_id");
  w.String(r.id);
  w.Key("sink");
  w.String(r.sink);
  w.Key("type");
  w.String(r.type);
  w.Key("flow");
  w.String(r.flow);
  w.Key("outcome");
  w.String(r.outcome);
  w.Key("completed_at");
  w.Int64(r.completed_at);
  if (!p.reply_phone.empty()) {
    w.Key("wa_id");
    w.String(p.reply_phone);
  }
  if (!p.reply_user_id.empty()) {
    w.Key("user_id");
    w.String(p.reply_user_id);
  }
  w.Key("fields");
  w.StartObject();
  for (const auto& [k, v] : r.fields) {
    Key(w, k);
    w.String(v);
  }
  w.EndObject();
  PhotosMember(w, r.photos);
  if (!conversation.empty()) {
    w.Key("conversation");
    w.RawValue(conversation.c_str(), conversation.size(), rapidjson::kObjectType);
  }
  w.EndObject();
  return b.GetString();
}

std::string ExtractBody(const Parsed& p, const std::string& dedupe, const Effect& e,
                        const std::vector<std::pair<std::string, std::string>>& messages,
                        int64_t deadline_at) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Envelope(w, "outbound.extract", p, dedupe);
  w.Key("request_id");
  w.String(e.result.id);
  w.Key("extractor");
  w.String(e.extractor);
  w.Key("deadline_at");
  w.Int64(deadline_at);
  w.Key("fields");
  w.StartArray();
  for (const auto& f : e.extract) {
    w.StartObject();
    w.Key("name");
    w.String(f.name);
    w.Key("description");
    w.String(f.description);
    if (!f.values.empty()) {
      w.Key("values");
      w.StartArray();
      for (const auto& v : f.values) w.String(v);
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("messages");
  w.StartArray();
  for (const auto& [role, content] : messages) {
    w.StartObject();
    w.Key("role");
    w.String(role);
    w.Key("content");
    w.String(content);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return b.GetString();
}

OutboxRow ForEffect(const Parsed& p, const std::string& key, const Effect& e,
                    int64_t last_inbound_at, const std::string& mark_read) {
  switch (e.kind) {
    case Effect::Kind::kSendText:
    case Effect::Kind::kSendButtons:
      return {exchanges::kCommands, queues::kOutboundSend,
              SendBody(p, key, e, last_inbound_at, mark_read)};
    case Effect::Kind::kFetchMedia:
      return {exchanges::kCommands, queues::kMediaFetch, FetchBody(p, key, e)};
    case Effect::Kind::kFlowCompleted:
      return {exchanges::kEvents, routing::kFlowCompleted, CompletedBody(p, key, e)};
    case Effect::Kind::kUploadMedia:
      return {exchanges::kCommands, queues::kMediaUpload, UploadBody(p, key, e)};
    case Effect::Kind::kResultDue:
      // Back to this service's own event queue through a delay queue: at-least-once, no timer.
      return {exchanges::kRetry, DelayRoutingKey(queues::kConversationEvents, e.delay_ms),
              DueBody(p, key, e)};
    case Effect::Kind::kSendTemplate:
      return {exchanges::kCommands, queues::kOutboundSend,
              TemplateBody(p, key, e, last_inbound_at)};
    case Effect::Kind::kAssignmentDone:
    case Effect::Kind::kAssignmentUndeliverable:
    case Effect::Kind::kExtract:
    case Effect::Kind::kDeliver:
    case Effect::Kind::kHandoff:
    case Effect::Kind::kFlowExpired:  // never a message's: run_timeouts.cpp writes it
      break;  // not one plain message: written by ApplyInTransaction (the assignment; the context;
              // a row per sink)
  }
  return {exchanges::kCommands, queues::kOutboundSend, SendBody(p, key, e, last_inbound_at)};
}

}  // namespace convoy::conversation::processor_internal
