#include "edgepose/json.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace edgepose {

static const JsonValue kNull;

const JsonValue& JsonValue::operator[](const std::string& key) const {
    if (type_ != Object) return kNull;
    auto it = object_.find(key);
    return it == object_.end() ? kNull : it->second;
}

const JsonValue& JsonValue::operator[](size_t i) const {
    return (type_ == Array && i < array_.size()) ? array_[i] : kNull;
}

class JsonParser {
public:
    explicit JsonParser(const std::string& s) : s_(s) {}

    bool parse_document(JsonValue& out, std::string& error) {
        skip_ws();
        if (!parse_value(out, 0)) {
            error = error_ + " at byte " + std::to_string(pos_);
            return false;
        }
        skip_ws();
        if (pos_ != s_.size()) {
            error = "trailing characters at byte " + std::to_string(pos_);
            return false;
        }
        return true;
    }

private:
    const std::string& s_;
    size_t pos_ = 0;
    std::string error_;

    bool fail(const char* what) { error_ = what; return false; }
    void skip_ws() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) pos_++;
    }
    bool literal(const char* word) {
        size_t n = std::strlen(word);
        if (s_.compare(pos_, n, word) != 0) return false;
        pos_ += n;
        return true;
    }

    bool parse_value(JsonValue& v, int depth) {
        if (depth > 64) return fail("nesting too deep");
        if (pos_ >= s_.size()) return fail("unexpected end of text");
        char c = s_[pos_];
        if (c == '{') return parse_object(v, depth);
        if (c == '[') return parse_array(v, depth);
        if (c == '"') { v.type_ = JsonValue::String; return parse_string(v.string_); }
        if (literal("true")) { v.type_ = JsonValue::Bool; v.bool_ = true; return true; }
        if (literal("false")) { v.type_ = JsonValue::Bool; v.bool_ = false; return true; }
        if (literal("null")) { v.type_ = JsonValue::Null; return true; }
        // Python's json writes these for non-finite floats.
        if (literal("NaN")) { v.type_ = JsonValue::Number; v.number_ = NAN; return true; }
        if (literal("Infinity")) { v.type_ = JsonValue::Number; v.number_ = INFINITY; return true; }
        if (literal("-Infinity")) { v.type_ = JsonValue::Number; v.number_ = -INFINITY; return true; }
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(v);
        return fail("unexpected character");
    }

    bool parse_number(JsonValue& v) {
        const char* begin = s_.c_str() + pos_;
        char* end = nullptr;
        double d = std::strtod(begin, &end);
        if (end == begin) return fail("bad number");
        pos_ += static_cast<size_t>(end - begin);
        v.type_ = JsonValue::Number;
        v.number_ = d;
        return true;
    }

    static void append_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) out += static_cast<char>(cp);
        else if (cp < 0x800) { out += static_cast<char>(0xC0 | (cp >> 6)); out += static_cast<char>(0x80 | (cp & 0x3F)); }
        else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12)); out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18)); out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)); out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    bool hex4(unsigned& cp) {
        if (pos_ + 4 > s_.size()) return fail("short \\u escape");
        cp = 0;
        for (int i = 0; i < 4; i++) {
            char h = s_[pos_++];
            cp <<= 4;
            if (h >= '0' && h <= '9') cp |= h - '0';
            else if (h >= 'a' && h <= 'f') cp |= h - 'a' + 10;
            else if (h >= 'A' && h <= 'F') cp |= h - 'A' + 10;
            else return fail("bad \\u escape");
        }
        return true;
    }

    bool parse_string(std::string& out) {
        pos_++;  // opening quote
        out.clear();
        while (pos_ < s_.size()) {
            char c = s_[pos_++];
            if (c == '"') return true;
            if (c != '\\') { out += c; continue; }
            if (pos_ >= s_.size()) break;
            char e = s_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned cp;
                    if (!hex4(cp)) return false;
                    if (cp >= 0xD800 && cp < 0xDC00 && s_.compare(pos_, 2, "\\u") == 0) {
                        pos_ += 2;
                        unsigned lo;
                        if (!hex4(lo)) return false;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: return fail("bad escape");
            }
        }
        return fail("unterminated string");
    }

    bool parse_array(JsonValue& v, int depth) {
        pos_++;
        v.type_ = JsonValue::Array;
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == ']') { pos_++; return true; }
        while (true) {
            v.array_.emplace_back();
            skip_ws();
            if (!parse_value(v.array_.back(), depth + 1)) return false;
            skip_ws();
            if (pos_ >= s_.size()) return fail("unterminated array");
            if (s_[pos_] == ',') { pos_++; continue; }
            if (s_[pos_] == ']') { pos_++; return true; }
            return fail("expected , or ]");
        }
    }

    bool parse_object(JsonValue& v, int depth) {
        pos_++;
        v.type_ = JsonValue::Object;
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == '}') { pos_++; return true; }
        while (true) {
            skip_ws();
            if (pos_ >= s_.size() || s_[pos_] != '"') return fail("expected a key");
            std::string key;
            if (!parse_string(key)) return false;
            skip_ws();
            if (pos_ >= s_.size() || s_[pos_] != ':') return fail("expected :");
            pos_++;
            skip_ws();
            if (!parse_value(v.object_[key], depth + 1)) return false;
            skip_ws();
            if (pos_ >= s_.size()) return fail("unterminated object");
            if (s_[pos_] == ',') { pos_++; continue; }
            if (s_[pos_] == '}') { pos_++; return true; }
            return fail("expected , or }");
        }
    }
};

bool JsonValue::parse(const std::string& text, JsonValue& out, std::string& error) {
    out = JsonValue();
    JsonParser p(text);
    return p.parse_document(out, error);
}

}  // namespace edgepose
