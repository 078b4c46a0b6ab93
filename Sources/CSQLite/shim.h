#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro around a cast Swift cannot import; bind calls use this instead.
static inline sqlite3_destructor_type csqlite_transient(void) {
    return SQLITE_TRANSIENT;
}

// sqlite3_config is variadic, which Swift cannot call: the one setting flashsale makes.
static inline int csqlite_config_memstatus(int on) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, on);
}

// sqlite3.h's extended result codes are macros built with | and <<, which Swift does not
// import either: those flashsale tells apart, with sqlite3.h's own values.
static const int CSQLITE_IOERR_WRITE = SQLITE_IOERR_WRITE;
static const int CSQLITE_IOERR_FSYNC = SQLITE_IOERR_FSYNC;
static const int CSQLITE_IOERR_DIR_FSYNC = SQLITE_IOERR_DIR_FSYNC;
static const int CSQLITE_IOERR_TRUNCATE = SQLITE_IOERR_TRUNCATE;
static const int CSQLITE_IOERR_SHMSIZE = SQLITE_IOERR_SHMSIZE;
static const int CSQLITE_READONLY_DIRECTORY = SQLITE_READONLY_DIRECTORY;

// sqlite3_db_config is variadic too: whether closing the last connection checkpoints.
static inline int csqlite_checkpoint_on_close(sqlite3 *db, int on) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, !on, (int *)0);
}
