"""The PostgreSQL advisory-lock keys the plugin takes, in one place so that no two collide:
each is eight ASCII letters read as a 64-bit integer."""

REFRESH = 0x6F6D6E6964617368  # "omnidash": one refresher at a time
TAIL_INSTALL = 0x6F6D6E69_7461696C  # "omnitail": one installer of the tail's triggers
DEAD_LETTER_INSTALL = 0x6F6D6E69_646C6300  # "omnidlc\0": one of the dead-letter counts'
