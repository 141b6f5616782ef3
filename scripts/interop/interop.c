/*
 * The C side of scripts/interop.ts (npm run interop:c): compiled and run by it against the official AWS Encryption
 * SDK for C, with the folder holding keys.tsv, context.tsv and ours.tsv (their columns: scripts/interop.ts).
 *
 * Decrypts kms-envelope's messages (ours.tsv) and checks each against its case (plaintext, context and suite: the
 * C SDK does not report the frame length), then encrypts every case itself into theirs.tsv. Exit status: 0 when
 * all decrypted, 1 when some did not.
 */
#define _POSIX_C_SOURCE 200809L
#include <aws/common/encoding.h>
#include <aws/cryptosdk/default_cmm.h>
#include <aws/cryptosdk/enc_ctx.h>
#include <aws/cryptosdk/error.h>
#include <aws/cryptosdk/multi_keyring.h>
#include <aws/cryptosdk/raw_aes_keyring.h>
#include <aws/cryptosdk/raw_rsa_keyring.h>
#include <aws/cryptosdk/session.h>
#include <aws/cryptosdk/version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS 4096
#define COLUMNS 7 /* suite, keyring, label, our frame length, its frame length, plaintext, ciphertext */

static struct aws_allocator *alloc;
static const char *folder;

struct row {
    char *fields[COLUMNS];
    int count;
};

/** The tab-separated rows of that file in the folder, at most `capacity`; their fields point into lines never freed. */
static int read_rows(const char *name, struct row *rows, int capacity) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", folder, name);
    FILE *file = fopen(path, "r");
    if (!file) {
        perror(path);
        exit(2);
    }
    int count = 0;
    char *line = NULL;
    size_t size = 0;
    ssize_t length;
    while ((length = getline(&line, &size, file)) > 0 && count < capacity) {
        if (line[length - 1] == '\n') line[length - 1] = 0;
        if (!line[0]) continue;
        struct row *row = &rows[count++];
        row->count = 0;
        for (char *field = line; field && row->count < COLUMNS; row->count++) {
            row->fields[row->count] = field;
            field = strchr(field, '\t');
            if (field) *field++ = 0;
        }
        line = NULL; /* the row keeps this line */
        size = 0;
    }
    fclose(file);
    return count;
}

static struct aws_byte_buf from_base64(const char *text) {
    struct aws_byte_cursor encoded = aws_byte_cursor_from_c_str(text);
    size_t length = 0;
    struct aws_byte_buf decoded;
    if (aws_base64_compute_decoded_len(&encoded, &length) || aws_byte_buf_init(&decoded, alloc, length + 1) ||
        aws_base64_decode(&encoded, &decoded)) {
        fprintf(stderr, "interop-c: bad base64 in the folder's files\n");
        exit(2);
    }
    decoded.buffer[decoded.len] = 0; /* PEM text is read as a C string */
    return decoded;
}

static char *to_base64(const uint8_t *bytes, size_t length) {
    struct aws_byte_cursor raw = aws_byte_cursor_from_array(bytes, length);
    size_t encoded_length = 0;
    struct aws_byte_buf encoded;
    aws_base64_compute_encoded_len(length, &encoded_length);
    aws_byte_buf_init(&encoded, alloc, encoded_length + 1);
    aws_base64_encode(&raw, &encoded);
    encoded.buffer[encoded.len] = 0;
    return (char *)encoded.buffer;
}

static struct row keys[16];
static int key_count;

static const char *key(const char *name) {
    for (int i = 0; i < key_count; i++) {
        if (!strcmp(keys[i].fields[0], name)) return keys[i].fields[1];
    }
    fprintf(stderr, "interop-c: keys.tsv has no %s\n", name);
    exit(2);
}

/** The raw keyring kms-envelope's keyring of that name matches (same namespace, key name and key). */
static struct aws_cryptosdk_keyring *keyring(const char *name) {
    if (!strcmp(name, "multi")) {
        struct aws_cryptosdk_keyring *generator = keyring("aes-256"), *child = keyring("rsa-OAEP-SHA256");
        struct aws_cryptosdk_keyring *multi = aws_cryptosdk_multi_keyring_new(alloc, generator);
        aws_cryptosdk_multi_keyring_add_child(multi, child);
        aws_cryptosdk_keyring_release(generator); /* the multi-keyring holds its own references */
        aws_cryptosdk_keyring_release(child);
        return multi;
    }
    struct aws_string *namespace = aws_string_new_from_c_str(alloc, key("namespace"));
    struct aws_string *key_name = aws_string_new_from_c_str(alloc, name);
    struct aws_cryptosdk_keyring *found = NULL;
    if (!strncmp(name, "aes-", 4)) {
        struct aws_byte_buf bytes = from_base64(key(name));
        found = aws_cryptosdk_raw_aes_keyring_new(alloc, namespace, key_name, bytes.buffer, (enum aws_cryptosdk_aes_key_len)bytes.len);
        aws_byte_buf_clean_up_secure(&bytes);
    } else {
        const char *padding = name + 4;
        enum aws_cryptosdk_rsa_padding_mode mode = !strcmp(padding, "PKCS1")       ? AWS_CRYPTOSDK_RSA_PKCS1
                                                   : !strcmp(padding, "OAEP-SHA1") ? AWS_CRYPTOSDK_RSA_OAEP_SHA1_MGF1
                                                                                   : AWS_CRYPTOSDK_RSA_OAEP_SHA256_MGF1;
        struct aws_byte_buf private_pem = from_base64(key("rsa-private")), public_pem = from_base64(key("rsa-public"));
        found = aws_cryptosdk_raw_rsa_keyring_new(alloc, namespace, key_name, (char *)private_pem.buffer, (char *)public_pem.buffer, mode);
        aws_byte_buf_clean_up_secure(&private_pem);
        aws_byte_buf_clean_up(&public_pem);
    }
    aws_string_destroy(namespace);
    aws_string_destroy(key_name);
    return found;
}

/* The expected context, read once from context.tsv. */
static struct aws_string *context_keys[16], *context_values[16];
static int context_count;

static struct aws_string *string_from_base64(const char *text) {
    struct aws_byte_buf bytes = from_base64(text);
    struct aws_string *string = aws_string_new_from_array(alloc, bytes.buffer, bytes.len);
    aws_byte_buf_clean_up(&bytes);
    return string;
}

static void read_context(void) {
    struct row rows[16];
    context_count = read_rows("context.tsv", rows, 16);
    for (int i = 0; i < context_count; i++) {
        context_keys[i] = string_from_base64(rows[i].fields[0]);
        context_values[i] = string_from_base64(rows[i].fields[1]);
    }
}

/** Whether the message's context is ours, its signing key left out. */
static bool same_context(const struct aws_hash_table *found) {
    size_t extra = 0;
    struct aws_string *public_key = aws_string_new_from_c_str(alloc, "aws-crypto-public-key");
    struct aws_hash_element *element = NULL;
    if (!aws_hash_table_find(found, public_key, &element) && element) extra = 1;
    aws_string_destroy(public_key);
    if (aws_hash_table_get_entry_count(found) != (size_t)context_count + extra) return false;
    for (int i = 0; i < context_count; i++) {
        element = NULL;
        aws_hash_table_find(found, context_keys[i], &element);
        if (!element || !aws_string_eq((const struct aws_string *)element->value, context_values[i])) return false;
    }
    return true;
}

/** Copies of our context's pairs into a session's context, which owns them. */
static void put_context(struct aws_hash_table *table) {
    for (int i = 0; i < context_count; i++) {
        aws_hash_table_put(table, aws_string_new_from_string(alloc, context_keys[i]), aws_string_new_from_string(alloc, context_values[i]), NULL);
    }
}

static struct row ours[MAX_ROWS];

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    folder = argv[1];
    alloc = aws_default_allocator();
    aws_cryptosdk_load_error_strings();
    key_count = read_rows("keys.tsv", keys, 16);
    read_context();
    int count = read_rows("ours.tsv", ours, MAX_ROWS);
    int failures = 0;

    for (int i = 0; i < count; i++) {
        char **c = ours[i].fields;
        int suite = atoi(c[0]);
        struct aws_byte_buf ciphertext = from_base64(c[6]), plaintext = from_base64(c[5]);
        struct aws_cryptosdk_keyring *kr = keyring(c[1]);
        struct aws_cryptosdk_session *session = aws_cryptosdk_session_new_from_keyring_2(alloc, AWS_CRYPTOSDK_DECRYPT, kr);
        aws_cryptosdk_session_set_commitment_policy(session, COMMITMENT_POLICY_REQUIRE_ENCRYPT_ALLOW_DECRYPT);
        size_t capacity = ciphertext.len + 1, written = 0;
        uint8_t *out = malloc(capacity);
        enum aws_cryptosdk_alg_id found_suite = 0;
        const char *problem = NULL;
        if (aws_cryptosdk_session_process_full(session, out, capacity, &written, ciphertext.buffer, ciphertext.len)) {
            problem = aws_error_debug_str(aws_last_error());
        } else if (written != plaintext.len || memcmp(out, plaintext.buffer, written)) {
            problem = "another plaintext";
        } else if (!same_context(aws_cryptosdk_session_get_enc_ctx_ptr(session))) {
            problem = "another context";
        } else if (aws_cryptosdk_session_get_alg_id(session, &found_suite) || (int)found_suite != suite) {
            problem = "another suite";
        }
        if (problem) {
            printf("  0x%04x %s %s: %s\n", suite, c[1], c[2], problem);
            failures++;
        }
        free(out);
        aws_cryptosdk_session_destroy(session);
        aws_cryptosdk_keyring_release(kr);
        aws_byte_buf_clean_up(&ciphertext);
        aws_byte_buf_clean_up(&plaintext);
    }
    const char *writer = "the C SDK " AWS_CRYPTOSDK_VERSION_STR;
    printf("%s decrypted %d of kms-envelope's %d messages\n", writer, count - failures, count);
    char path[4096];
    snprintf(path, sizeof(path), "%s/writer.txt", folder);
    FILE *writer_file = fopen(path, "w");
    fputs(writer, writer_file);
    fclose(writer_file);
    snprintf(path, sizeof(path), "%s/theirs.tsv", folder);
    FILE *theirs = fopen(path, "w");
    for (int i = 0; i < count; i++) {
        char **c = ours[i].fields;
        int suite = atoi(c[0]);
        bool committing = suite == ALG_AES256_GCM_HKDF_SHA512_COMMIT_KEY || suite == ALG_AES256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384;
        struct aws_byte_buf plaintext = from_base64(c[5]);
        struct aws_cryptosdk_keyring *kr = keyring(c[1]);
        struct aws_cryptosdk_cmm *cmm = aws_cryptosdk_default_cmm_new(alloc, kr);
        aws_cryptosdk_default_cmm_set_alg_id(cmm, (enum aws_cryptosdk_alg_id)suite);
        struct aws_cryptosdk_session *session = aws_cryptosdk_session_new_from_cmm_2(alloc, AWS_CRYPTOSDK_ENCRYPT, cmm);
        aws_cryptosdk_session_set_commitment_policy(
            session, committing ? COMMITMENT_POLICY_REQUIRE_ENCRYPT_REQUIRE_DECRYPT : COMMITMENT_POLICY_FORBID_ENCRYPT_ALLOW_DECRYPT);
        put_context(aws_cryptosdk_session_get_enc_ctx_ptr_mut(session));
        size_t capacity = 64 * plaintext.len + 65536, written = 0; /* room for one-byte frames and a signature */
        uint8_t *out = malloc(capacity);
        if (aws_cryptosdk_session_set_frame_size(session, (uint32_t)atol(c[4])) ||
            aws_cryptosdk_session_process_full(session, out, capacity, &written, plaintext.buffer, plaintext.len)) {
            /* reported; the case is left out, which the Node side counts as a failure */
            printf("  encrypting 0x%04x %s %s: %s\n", suite, c[1], c[2], aws_error_debug_str(aws_last_error()));
            failures++;
        } else {
            char *encoded = to_base64(out, written);
            fprintf(theirs, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c[0], c[1], c[2], c[3], c[4], c[5], encoded);
            aws_mem_release(alloc, encoded);
        }
        free(out);
        aws_cryptosdk_session_destroy(session);
        aws_cryptosdk_cmm_release(cmm);
        aws_cryptosdk_keyring_release(kr);
        aws_byte_buf_clean_up(&plaintext);
    }
    fclose(theirs);
    return failures ? 1 : 0;
}
