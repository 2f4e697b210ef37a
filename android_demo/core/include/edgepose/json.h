// A small JSON reader for the model metadata files (edge_runtime/model_meta.py).
// Read-only, whole document in memory; enough for metadata, not a general library.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace edgepose {

class JsonValue {
public:
    enum Type { Null, Bool, Number, String, Array, Object };

    JsonValue() = default;
    Type type() const { return type_; }
    bool is_null() const { return type_ == Null; }
    bool is_number() const { return type_ == Number; }
    bool is_string() const { return type_ == String; }
    bool is_array() const { return type_ == Array; }
    bool is_object() const { return type_ == Object; }

    double number(double fallback = 0.0) const { return type_ == Number ? number_ : fallback; }
    bool boolean(bool fallback = false) const { return type_ == Bool ? bool_ : fallback; }
    const std::string& str() const { return string_; }
    const std::vector<JsonValue>& items() const { return array_; }
    const std::map<std::string, JsonValue>& members() const { return object_; }

    bool has(const std::string& key) const { return type_ == Object && object_.count(key) != 0; }
    // Missing keys and non-objects give a shared null value.
    const JsonValue& operator[](const std::string& key) const;
    const JsonValue& operator[](size_t i) const;
    size_t size() const { return type_ == Array ? array_.size() : type_ == Object ? object_.size() : 0; }

    // Parse text; on failure returns false and sets `error` (with the byte offset).
    static bool parse(const std::string& text, JsonValue& out, std::string& error);

private:
    friend class JsonParser;
    Type type_ = Null;
    bool bool_ = false;
    double number_ = 0.0;
    std::string string_;
    std::vector<JsonValue> array_;
    std::map<std::string, JsonValue> object_;
};

}  // namespace edgepose
