/*
 * pickle_op.h: the pickle opcodes (pickletools' names) that pickle.c writes
 * and unpickle.c reads back; one table so that the two cannot disagree.
 */
#ifndef PCD_PICKLE_OP_H
#define PCD_PICKLE_OP_H

#define OP_MARK			'('
#define OP_STOP			'.'
#define OP_EMPTY_DICT		'}'
#define OP_EMPTY_LIST		']'
#define OP_SETITEM		's'
#define OP_SETITEMS		'u'
#define OP_APPEND		'a'
#define OP_APPENDS		'e'
#define OP_BININT		'J'
#define OP_BININT1		'K'
#define OP_BININT2		'M'
#define OP_LONG1		0x8a
#define OP_LONG4		0x8b
#define OP_BINFLOAT		'G'
#define OP_NONE			'N'
#define OP_NEWTRUE		0x88
#define OP_NEWFALSE		0x89
#define OP_BINUNICODE		'X'
#define OP_SHORT_BINUNICODE	0x8c
#define OP_BINUNICODE8		0x8d
#define OP_BINPUT		'q'
#define OP_LONG_BINPUT		'r'
#define OP_BINGET		'h'
#define OP_LONG_BINGET		'j'
#define OP_MEMOIZE		0x94
#define OP_PROTO		0x80
#define OP_FRAME		0x95

#endif /* PCD_PICKLE_OP_H */
