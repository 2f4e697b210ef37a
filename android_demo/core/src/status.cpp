#include "edgepose/status.h"

namespace edgepose {

const char* status_code_name(int code) {
    switch (code) {
        case OK: return "ok";
        case ERR_NOT_FOUND: return "not_found";
        case ERR_BAD_MODEL: return "bad_model";
        case ERR_BAD_IMAGE: return "bad_image";
        case ERR_BAD_ARGUMENT: return "bad_argument";
        case ERR_INFERENCE: return "inference";
        default: return "unknown";
    }
}

}  // namespace edgepose
