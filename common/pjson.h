/*
 * pjson.h - JSON of payments, events and errors: both directions.
 *
 * Owns nothing itself: includes pjson_enc.h (writing JSON) and
 * pjson_parse.h (the strict request parser and reading trees), for the
 * callers that need both.
 */
#ifndef PT_PJSON_H
#define PT_PJSON_H

#include "pjson_enc.h"
#include "pjson_parse.h"

#endif
