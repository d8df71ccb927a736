// A delivery read once: its schema checked, its members parsed into Parsed, or a dead letter.
#include <glog/logging.h>
#include <rapidjson/document.h>

#include "convoy/crypto.h"
#include "convoy/log.h"
#include "convoy/rapidjson_util.h"
#include "convoy/topology.h"
#include "engine/account_events.h"
#include "engine/processor_internal.h"
#include "engine/state_codec.h"

namespace convoy::conversation {

using processor_internal::M;
using processor_internal::Parsed;

namespace {

using rapidjson::Value;

void ParseDelivery(const rapidjson::Document& doc, const Delivery& d, Parsed& p) {
  p.queue = d.queue;
  p.schema = JsonStr(doc, "schema");
  p.correlation_id = JsonStr(doc, "correlation_id");
  p.conversation_key = JsonStr(doc, "conversation_key");
  p.phone_number_id = JsonStr(doc, "phone_number_id");
  if (p.phone_number_id
          .empty()) {  // internal events name the conversation, "<phone_number_id>:<identity>"
    p.phone_number_id = p.conversation_key.substr(0, p.conversation_key.find(':'));
  }
  p.dedupe_key = d.Header(headers::kDedupeKey);
  Event& e = p.event;
  if (p.schema == "inbound.message") {
    const Value& m = JsonMember(doc, "message");
    p.wa_id = JsonStr(doc, "wa_id");
    p.user_id = JsonStr(doc, "user_id");
    p.parent_user_id = JsonStr(doc, "parent_user_id");
    if (JsonStr(m, "type") == "system") {
      const Value& sys = JsonMember(m, "system");
      p.system_type = JsonStr(sys, "type");
      if (p.system_type == "user_changed_number") p.new_wa_id = JsonStr(sys, "wa_id");
      if (p.system_type == "user_changed_user_id") {
        p.new_user_id = JsonStr(sys, "user_id");
        p.previous_user_id = JsonStr(sys, "previous_user_id");
      }
    }
    if (p.dedupe_key.empty()) p.dedupe_key = JsonStr(m, "id");
    p.kind = "message";
    p.wa_timestamp = std::atoll(JsonStr(m, "timestamp").c_str());
    p.received_at = JsonStr(doc, "received_at");
    p.app = JsonStr(doc, "app");
    if (p.app.empty()) p.app = "default";
    e.profile_name = JsonStr(doc, "profile_name");
    e.wa_timestamp = p.wa_timestamp;
    const std::string channel = JsonStr(doc, "channel");  // the schema's enum; absent: messages
    e.channel = channel == "standby"   ? Event::Channel::kStandby
                : channel == "echo"    ? Event::Channel::kEcho
                : channel == "history" ? Event::Channel::kHistory
                                       : Event::Channel::kMessages;
    e.outgoing = JsonStr(doc, "direction") == "out";
    std::string type = JsonStr(m, "type");
    e.message_type = type;
    if (type == "text") {
      e.kind = Event::Kind::kText;
      e.text = JsonStr(JsonMember(m, "text"), "body");
    } else if (type == "image" || type == "document" || type == "video" || type == "audio") {
      // Media, its member named after its type (a voice note is audio with "voice": true); whether
      // the step takes it is the engine's to say.
      const Value& media = JsonMember(m, type.c_str());
      e.kind = Event::Kind::kMedia;
      e.media_id = JsonStr(media, "id");
      e.mime_type = JsonStr(media, "mime_type");
      e.sha256 = JsonStr(media, "sha256");
      e.text = JsonStr(media, "caption");
      e.filename = JsonStr(media, "filename");
      if (e.media_id.empty()) e.kind = Event::Kind::kOther;
    } else if (type == "interactive") {
      // A tapped reply button or list row: its id picks the choice, its title reads as text.
      const Value& in = JsonMember(m, "interactive");
      const std::string kind = JsonStr(in, "type");
      if (kind == "button_reply" || kind == "list_reply") {
        const Value& reply = JsonMember(in, kind.c_str());
        e.kind = Event::Kind::kButton;
        e.button_id = JsonStr(reply, "id");
        e.text = JsonStr(reply, "title");
      }
      // Anything else (nfm_reply: a WhatsApp Flows form submitted, with its response_json) is
      // something the user did that no convoy flow asked for: kOther, answered like any such.
    } else if (type == "button") {
      // A template's quick-reply button.
      const Value& b = JsonMember(m, "button");
      e.kind = Event::Kind::kButton;
      e.button_id = JsonStr(b, "payload");
      e.text = JsonStr(b, "text");
    } else if (type == "system" || type == "reaction" || type == "edit" || type == "revoke") {
      // WhatsApp's notice (a number or ID change), an emoji on a message (or its removal), an
      // edit or a deletion of an earlier message: recorded in the transcript, never answered as
      // if the user had written something new.
      e.kind = Event::Kind::kRecorded;
    }
  } else if (p.schema == "inbound.handover") {
    // The thread's owner changed (Meta's Conversation Routing): the customer's conversation, in
    // order with their messages.
    p.kind = "handover";
    p.wa_id = JsonStr(doc, "wa_id");
    p.user_id = JsonStr(doc, "user_id");
    p.parent_user_id = JsonStr(doc, "parent_user_id");
    p.wa_timestamp = std::atoll(JsonStr(doc, "timestamp").c_str());
    p.received_at = JsonStr(doc, "received_at");
    p.app = JsonStr(doc, "app");
    if (p.app.empty()) p.app = "default";
    e.kind = Event::Kind::kHandover;
    e.wa_timestamp = p.wa_timestamp;
    e.handover_action = JsonStr(doc, "action");
    e.previous_owner_app_id = JsonStr(doc, "previous_owner_app_id");
    e.new_owner_app_id = JsonStr(doc, "new_owner_app_id");
    if (p.dedupe_key.empty()) {  // ingress's key (webhook.h), the user as a digest
      const std::string& user = p.wa_id.empty() ? p.user_id : p.wa_id;
      p.dedupe_key = "handover:" + p.phone_number_id + ":" + Sha256Hex(user).substr(0, 16) + ":" +
                     e.handover_action + ":" + JsonStr(doc, "timestamp");
    }
  } else {
    // Internal events name their own dedupe key: "<schema>:<dedupe key of the command>".
    p.kind = p.schema;
    if (p.dedupe_key.empty()) p.dedupe_key = p.schema + ":" + JsonStr(doc, "dedupe_key");
    e.kind = Event::Kind::kRecorded;  // never mistaken for something the user said
    e.media_id = JsonStr(doc, "media_id");
    e.stored_name = JsonStr(doc, "stored_name");
    e.mime_type = JsonStr(doc, "mime_type");  // media.stored: the verified type
    e.reason = JsonStr(doc, "reason");
    e.code = JsonStr(doc, "code");
    if (p.schema == "media.stored") e.kind = Event::Kind::kMediaStored;
    if (p.schema == "media.failed") e.kind = Event::Kind::kMediaFailed;
    if (p.schema == "outbound.sent") e.kind = Event::Kind::kSendSucceeded;
    if (p.schema == "outbound.failed") {
      e.kind = Event::Kind::kSendFailed;
      e.command_key = JsonStr(doc, "dedupe_key");
    }
    if (p.schema.rfind("assignment.", 0) == 0) {
      // The operator is a person like any sender: their identity finds their conversation, for
      // every assignment event (one that named no identity would hold the operator's key with no
      // identity linked, and their checklist would start in a conversation of its own).
      const std::string op = JsonStr(doc, "operator");
      const bool phone = !op.empty() && op.find_first_not_of("0123456789") == std::string::npos;
      (phone ? p.wa_id : p.user_id) = op;
    }
    if (p.schema == "assignment.started" || p.schema == "assignment.cancelled" ||
        p.schema == "assignment.expired") {
      if (p.schema == "assignment.started") {
        e.kind = Event::Kind::kAssignmentStarted;
        e.assignment = DecodeAssignment(JsonMember(doc, "assignment"));
      } else {
        e.kind = Event::Kind::kAssignmentEnded;
        e.assignment.id = JsonStr(doc, "assignment_id");
        e.reason = p.schema.substr(std::string("assignment.").size());
      }
    }
    if (p.schema == "outbound.extracted") {
      e.kind = Event::Kind::kExtracted;
      e.result_id = JsonStr(doc, "request_id");
      e.reason = JsonStr(doc, "error");
      const Value& fields = JsonMember(doc, "fields");
      if (fields.IsObject()) {
        for (const auto& m : fields.GetObject()) {
          if (m.value.IsString()) e.fields[m.name.GetString()] = m.value.GetString();
        }
      }
    }
    if (p.schema == "result.due") {
      e.kind = Event::Kind::kResultDue;
      e.result_id = JsonStr(doc, "result_id");
    }
    if (p.schema == "outbound.status_changed") {
      MessageStatus& st = p.status_change;
      st.send_key = JsonStr(doc, "dedupe_key");
      st.status = JsonStr(doc, "status");
      st.wamid = JsonStr(doc, "wamid");
      st.reason = JsonStr(doc, "reason");
      const Value& code = JsonMember(doc, "code");
      st.code = code.IsInt() ? code.GetInt() : 0;
      const Value& at = JsonMember(doc, "at");
      st.at = at.IsInt64() ? at.GetInt64() : 0;
    }
    if (p.schema == "outbound.thread_controlled") {
      p.thread.dedupe_key = JsonStr(doc, "dedupe_key");
      p.thread.action = JsonStr(doc, "action");
      p.thread.outcome = JsonStr(doc, "outcome");
      p.thread.agent = JsonStr(doc, "agent");
      p.thread.reason = JsonStr(doc, "reason");
      const Value& code = JsonMember(doc, "code");
      p.thread.code = code.IsInt() ? code.GetInt() : 0;
    }
  }
}

}  // namespace

std::optional<Disposition> Processor::Prepare(const Delivery& d, Parsed* p) {
  LogCtx ctx{d.queue, d.Header(headers::kCorrelationId), d.Header(headers::kConversationKey),
             d.Header(headers::kDedupeKey)};
  Status valid = schemas_.Validate(d.body);
  if (!valid.ok()) {
    M().invalid.Inc();
    LOG(WARNING) << ctx << "event=invalid_message reason=" << valid.message();
    return Disposition::DeadLetter(valid.ToString());
  }
  rapidjson::Document doc;
  doc.Parse(d.body.c_str(), d.body.size());
  // An account_update is no conversation's: applied on its own (account_events.h), its outcome
  // final.
  if (JsonStr(doc, "schema") == "inbound.account") return ApplyAccountUpdate(db_, doc, d);
  ParseDelivery(doc, d, *p);
  if (p->schema == "inbound.message" && p->wa_id.empty() && p->user_id.empty()) {
    // Never a shared "unknown" conversation: two strangers would answer each other's questions.
    M().invalid.Inc();
    LOG(WARNING) << ctx << "event=invalid_message reason=no_identity";
    return Disposition::DeadLetter(
        "invalid_argument: no usable identity (no from, no from_user_id, no wa_id, no user_id)");
  }
  if (p->conversation_key.empty() || p->phone_number_id.empty()) {
    M().invalid.Inc();
    LOG(WARNING) << ctx << "event=invalid_message reason=names_no_conversation";
    return Disposition::DeadLetter("invalid_argument: message names no conversation");
  }
  return std::nullopt;
}

}  // namespace convoy::conversation
