#include "engine/state_codec.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "convoy/rapidjson_util.h"

namespace convoy::conversation {

namespace {

int64_t Int(const rapidjson::Value& obj, const char* key) {
  const auto& v = JsonMember(obj, key);
  return v.IsInt64() ? v.GetInt64() : 0;
}

std::map<std::string, std::vector<Photo>> DecodePhotos(const rapidjson::Value& photos) {
  std::map<std::string, std::vector<Photo>> out;
  if (!photos.IsObject()) return out;
  for (const auto& m : photos.GetObject()) {
    auto& list = out[m.name.GetString()];
    if (!m.value.IsArray()) continue;
    for (const auto& p : m.value.GetArray()) {
      Photo photo{JsonStr(p, "id"), Int(p, "at"), JsonStr(p, "stored"), JsonStr(p, "missing")};
      if (!JsonStr(p, "kind").empty())
        photo.kind = JsonStr(p, "kind");  // absent: a photo (and older states)
      photo.mime_type = JsonStr(p, "mime");
      photo.filename = JsonStr(p, "filename");
      list.push_back(std::move(photo));
    }
  }
  return out;
}

void EncodeStrings(rapidjson::Writer<rapidjson::StringBuffer>& w,
                   const std::map<std::string, std::string>& m) {
  w.StartObject();
  for (const auto& [k, v] : m) {
    w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v);
  }
  w.EndObject();
}

void EncodePhotos(rapidjson::Writer<rapidjson::StringBuffer>& w,
                  const std::map<std::string, std::vector<Photo>>& photos) {
  w.StartObject();
  for (const auto& [field, list] : photos) {
    w.Key(field.c_str(), static_cast<rapidjson::SizeType>(field.size()));
    w.StartArray();
    for (const auto& p : list) {
      w.StartObject();
      w.Key("id");
      w.String(p.media_id);
      w.Key("at");
      w.Int64(p.at);
      if (!p.stored_name.empty()) {
        w.Key("stored");
        w.String(p.stored_name);
      }
      if (!p.missing.empty()) {
        w.Key("missing");
        w.String(p.missing);
      }
      if (p.kind != "image") {
        w.Key("kind");
        w.String(p.kind);
      }
      if (!p.mime_type.empty()) {
        w.Key("mime");
        w.String(p.mime_type);
      }
      if (!p.filename.empty()) {
        w.Key("filename");
        w.String(p.filename);
      }
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
}

}  // namespace

AssignmentRun DecodeAssignment(const rapidjson::Value& a) {
  AssignmentRun r;
  r.id = JsonStr(a, "id");
  r.title = JsonStr(a, "title");
  r.reference = JsonStr(a, "reference");
  r.operator_name = JsonStr(a, "operator_name");
  r.flow = JsonStr(a, "flow");
  r.index = static_cast<size_t>(std::max<int64_t>(0, Int(a, "index")));
  r.asked = JsonMember(a, "asked").IsTrue();
  r.answered_at = Int(a, "answered_at");
  r.pending_photo = JsonStr(a, "pending_photo");
  r.pending_answer = JsonStr(a, "pending_answer");
  const auto& qs = JsonMember(a, "questions");
  if (qs.IsArray()) {
    for (const auto& q : qs.GetArray()) {
      Question question;
      question.text = JsonStr(q, "text");
      if (!JsonStr(q, "photo").empty()) question.photo = JsonStr(q, "photo");
      const auto& answers = JsonMember(q, "answers");
      if (answers.IsArray()) {
        for (const auto& x : answers.GetArray()) {
          if (x.IsString()) question.answers.push_back(x.GetString());
        }
      }
      const auto& notes = JsonMember(q, "note_required");
      if (notes.IsArray()) {
        for (const auto& x : notes.GetArray()) {
          if (x.IsString()) question.note_required.push_back(x.GetString());
        }
      }
      r.questions.push_back(std::move(question));
    }
  }
  return r;
}

ConversationState DecodeState(const std::string& json) {
  ConversationState s;
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  if (d.HasParseError() || !d.IsObject()) return s;
  s.flow = JsonStr(d, "flow");
  s.step = JsonStr(d, "step");
  s.asking = JsonStr(d, "asking");
  s.entered_at = Int(d, "entered_at");
  s.messages = Int(d, "messages");
  s.last_inbound_at = Int(d, "last_inbound_at");
  const auto& fields = JsonMember(d, "fields");
  if (fields.IsObject()) {
    for (const auto& m : fields.GetObject()) {
      if (m.value.IsString()) s.fields[m.name.GetString()] = m.value.GetString();
    }
  }
  const auto& pending = JsonMember(d, "pending_uploads");
  if (pending.IsObject()) {
    for (const auto& m : pending.GetObject()) {
      if (m.value.IsString()) s.pending_uploads[m.name.GetString()] = m.value.GetString();
    }
  }
  s.photos = DecodePhotos(JsonMember(d, "photos"));
  const auto& results = JsonMember(d, "results");
  if (results.IsArray()) {
    for (const auto& v : results.GetArray()) {
      PendingResult r;
      r.id = JsonStr(v, "id");
      r.sink = JsonStr(v, "sink");
      r.type = JsonStr(v, "type");
      r.flow = JsonStr(v, "flow");
      r.outcome = JsonStr(v, "outcome");
      r.completed_at = Int(v, "completed_at");
      r.due_at = Int(v, "due_at");
      const auto& f = JsonMember(v, "fields");
      if (f.IsObject()) {
        for (const auto& m : f.GetObject()) {
          if (m.value.IsString()) r.fields[m.name.GetString()] = m.value.GetString();
        }
      }
      r.photos = DecodePhotos(JsonMember(v, "photos"));
      s.results.push_back(std::move(r));
    }
  }
  const auto& a = JsonMember(d, "assignment");
  if (a.IsObject()) s.assignment = DecodeAssignment(a);
  s.closed_note = JsonStr(d, "closed_note");
  s.set_aside = JsonStr(d, "set_aside");
  s.expired_run = JsonStr(d, "expired_run");
  s.expired_due = Int(d, "expired_due");
  s.greeted = JsonMember(d, "greeted").IsTrue();
  s.extracting = JsonStr(d, "extracting");
  s.extracting_at = Int(d, "extracting_at");
  s.misses = static_cast<int>(Int(d, "misses"));
  const auto& acked = JsonMember(d, "acked");
  if (acked.IsArray()) {
    for (const auto& a : acked.GetArray()) {
      if (a.IsString()) s.acked.push_back(a.GetString());
    }
  }
  const auto& history = JsonMember(d, "history");
  if (history.IsArray()) {
    for (const auto& h : history.GetArray()) {
      if (h.IsArray() && h.Size() == 2 && h[0].IsString() && h[1].IsInt64()) {
        s.history.emplace_back(h[0].GetString(), h[1].GetInt64());
      }
    }
  }
  return s;
}

std::string EncodeState(const ConversationState& s) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("flow");
  w.String(s.flow);
  w.Key("step");
  w.String(s.step);
  if (!s.asking.empty()) {
    w.Key("asking");
    w.String(s.asking);
  }
  w.Key("entered_at");
  w.Int64(s.entered_at);
  w.Key("messages");
  w.Int64(s.messages);
  w.Key("last_inbound_at");
  w.Int64(s.last_inbound_at);
  w.Key("fields");
  w.StartObject();
  for (const auto& [k, v] : s.fields) {
    w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v);
  }
  w.EndObject();
  if (!s.pending_uploads.empty()) {
    w.Key("pending_uploads");
    w.StartObject();
    for (const auto& [k, v] : s.pending_uploads) {
      w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
      w.String(v);
    }
    w.EndObject();
  }
  w.Key("photos");
  EncodePhotos(w, s.photos);
  if (!s.results.empty()) {
    w.Key("results");
    w.StartArray();
    for (const auto& r : s.results) {
      w.StartObject();
      w.Key("id");
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
      w.Key("due_at");
      w.Int64(r.due_at);
      w.Key("fields");
      EncodeStrings(w, r.fields);
      w.Key("photos");
      EncodePhotos(w, r.photos);
      w.EndObject();
    }
    w.EndArray();
  }
  if (!s.assignment.id.empty()) {
    const auto& a = s.assignment;
    w.Key("assignment");
    w.StartObject();
    w.Key("id");
    w.String(a.id);
    w.Key("title");
    w.String(a.title);
    w.Key("reference");
    w.String(a.reference);
    w.Key("operator_name");
    w.String(a.operator_name);
    w.Key("flow");
    w.String(a.flow);
    w.Key("index");
    w.Int64(static_cast<int64_t>(a.index));
    w.Key("asked");
    w.Bool(a.asked);
    w.Key("answered_at");
    w.Int64(a.answered_at);
    if (!a.pending_photo.empty()) {
      w.Key("pending_photo");
      w.String(a.pending_photo);
    }
    if (!a.pending_answer.empty()) {
      w.Key("pending_answer");
      w.String(a.pending_answer);
    }
    w.Key("questions");
    w.StartArray();
    for (const auto& q : a.questions) {
      w.StartObject();
      w.Key("text");
      w.String(q.text);
      w.Key("photo");
      w.String(q.photo);
      if (!q.answers.empty()) {
        w.Key("answers");
        w.StartArray();
        for (const auto& x : q.answers) w.String(x);
        w.EndArray();
      }
      if (!q.note_required.empty()) {
        w.Key("note_required");
        w.StartArray();
        for (const auto& x : q.note_required) w.String(x);
        w.EndArray();
      }
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  if (!s.closed_note.empty()) {
    w.Key("closed_note");
    w.String(s.closed_note);
  }
  if (!s.set_aside.empty()) {
    w.Key("set_aside");
    w.String(s.set_aside);
  }
  if (!s.expired_run.empty()) {
    w.Key("expired_run");
    w.String(s.expired_run);
    w.Key("expired_due");
    w.Int64(s.expired_due);
  }
  if (s.greeted) {
    w.Key("greeted");
    w.Bool(true);
  }
  if (!s.extracting.empty()) {
    w.Key("extracting");
    w.String(s.extracting);
    w.Key("extracting_at");
    w.Int64(s.extracting_at);
  }
  if (s.misses > 0) {
    w.Key("misses");
    w.Int(s.misses);
  }
  w.Key("acked");
  w.StartArray();
  for (const auto& a : s.acked) w.String(a);
  w.EndArray();
  w.Key("history");
  w.StartArray();
  for (const auto& [step, at] : s.history) {
    w.StartArray();
    w.String(step);
    w.Int64(at);
    w.EndArray();
  }
  w.EndArray();
  w.EndObject();
  return b.GetString();
}

}  // namespace convoy::conversation
