// Error reporting of the core: every fallible call returns a Status; nothing throws.
#pragma once

#include <string>

namespace edgepose {

enum StatusCode {
    OK = 0,
    ERR_NOT_FOUND = 1,       // file or folder missing
    ERR_BAD_MODEL = 2,       // metadata unreadable/invalid, param/bin not loadable, wrong blobs
    ERR_BAD_IMAGE = 3,       // empty image, zero/odd size, null pixels, bad stride
    ERR_BAD_ARGUMENT = 4,    // other caller mistakes (unknown precision, no model loaded)
    ERR_INFERENCE = 5,       // ncnn extract failed or produced a tensor of the wrong shape
};

struct Status {
    int code = OK;
    std::string message;
    bool ok() const { return code == OK; }
    static Status Ok() { return Status(); }
    static Status Error(int code, const std::string& message) {
        Status s;
        s.code = code;
        s.message = message;
        return s;
    }
};

const char* status_code_name(int code);

}  // namespace edgepose
