"""The MySQL adapter's pure parts: counting rows in a dump stream, quoting."""

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils.engines import mysql

MARIADB_1011 = b"""/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19  Distrib 10.11.18-MariaDB, for debian-linux-gnu (x86_64)
DROP TABLE IF EXISTS `e`;
CREATE TABLE `e` (
  `x` int(11) DEFAULT NULL
) ENGINE=InnoDB;
LOCK TABLES `e` WRITE;
UNLOCK TABLES;
CREATE TABLE `odd``name` (
  `id` int(11) NOT NULL
);
INSERT INTO `odd``name` VALUES
(1,0x00FF,'a\\'b'),
(2,NULL,'),('),
(3,'x','line\\nbreak');
INSERT INTO `odd``name` VALUES
(4,NULL,NULL);
-- Dump completed on 2026-11-25  4:30:00
"""

MYSQL_EXTENDED = b"""-- MySQL dump 10.13  Distrib 8.0.36
CREATE TABLE `t` (
  `id` int NOT NULL
);
INSERT INTO `t` VALUES (1,'a),(b'),(2,'c\\\\'),(3,'(,)');
INSERT INTO `t` VALUES (4,'d');
-- Dump completed on 2026-11-25 04:30:00
"""


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_counts_rows_one_tuple_per_line(chunk):
    counter = mysql.DumpCounter()
    for start in range(0, len(MARIADB_1011), chunk):
        counter.feed(MARIADB_1011[start:start + chunk])
    counter.close()
    assert counter.counts == {"e": 0, "odd`name": 4}
    assert counter.complete() == (True, True)


def test_counts_rows_in_extended_inserts_ignoring_separators_inside_strings():
    counter = mysql.DumpCounter()
    counter.feed(MYSQL_EXTENDED)
    counter.close()
    assert counter.counts == {"t": 4}
    assert counter.complete() == (True, True)


def test_truncated_dump_is_not_complete():
    counter = mysql.DumpCounter()
    counter.feed(MARIADB_1011[:-60])
    counter.close()
    assert counter.complete() == (True, False)


def test_not_a_dump():
    counter = mysql.DumpCounter()
    counter.feed(b"ERROR 1045 (28000): Access denied\n")
    counter.close()
    assert counter.complete() == (False, False)


def test_quoting():
    assert mysql.quote_ident("a`b") == "`a``b`"
    assert mysql.quote_literal("it's") == "'it\\'s'"
    assert mysql.quote_literal("back\\slash") == "'back\\\\slash'"


def test_error_lines_are_the_servers_words():
    assert mysql._error_line("mysqldump: Got error: 1045: \"Access denied for user 'root'@'127.0.0.1' "
                             "(using password: YES)\" when trying to connect\n").startswith('"Access denied')
    assert mysql._error_line("ERROR 1049 (42000): Unknown database 'nope'\n") == "Unknown database 'nope'"


MASTER_DATA_HEAD = b"""/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19  Distrib 10.11.18-MariaDB, for debian-linux-gnu (x86_64)
--
-- Alternately, following is the position of the binary logging from SHOW MASTER STATUS at point of backup.
--

-- CHANGE MASTER TO MASTER_LOG_FILE='mariadb-bin.000002', MASTER_LOG_POS=389;

CREATE TABLE `t` (
  `id` int NOT NULL
);
INSERT INTO `t` VALUES (1);
-- Dump completed on 2026-12-03 16:45:00
"""


@pytest.mark.parametrize("chunk", [1, 13, 1 << 20])
def test_the_snapshots_binary_log_position_is_read_from_the_master_data_comment(chunk):
    counter = mysql.DumpCounter()
    for start in range(0, len(MASTER_DATA_HEAD), chunk):
        counter.feed(MASTER_DATA_HEAD[start:start + chunk])
    counter.close()
    assert counter.binlog == {"file": "mariadb-bin.000002", "position": 389}
    assert counter.counts == {"t": 1}


def test_a_dump_without_the_comment_has_no_position():
    counter = mysql.DumpCounter()
    counter.feed(MARIADB_1011)
    counter.close()
    assert counter.binlog is None
