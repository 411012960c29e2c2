/* leakcheck.h - the leakage guard for itrek.instructions and itrek.queries streams.
 *
 * Instructions (training): every `history` id is a train interaction of the record's user (never
 * a valid or test item); no target/candidate in `items` is in the record's own history or is a
 * valid or test item of the user.
 * Queries (evaluation, header params.part test|valid): every `history` id is an interaction of the
 * user in train (or valid, for test queries), never a test item, and never a valid item for valid
 * queries; the prompt prefix (prompt[0..prefix_len), which holds the history) is the same for all
 * queries of one user and task.
 * With a catalogue: the title of every forbidden item of the user (as the templates show a title,
 * e.g. "Toy Story (1995)" in quotes) must not occur in the history section (queries: the prefix;
 * instructions: the whole prompt and response) unless an item actually shown has the same title
 * (ML-100K lists a few films twice under one title).
 * With a candidates stream (queries): it is for the same part; every query's items[k] is the
 * user's candidate at base rank ranks[k]; the pointwise queries of a user cover all of the user's
 * candidates, the listwise query shows them all in base order, the pairwise queries form disjoint
 * pairs each asked in both orders; every candidates user with a positive in the part has queries.
 * Query ids are unique.
 * A stream whose header says params.leaky (promptgen --hints recranker-leaky: hints read from a
 * rating matrix that holds the held-out ratings) is a leak, reported as such, unless `diagnostic`
 * says that the run is the leak diagnostic; every other check still runs.
 * The first problem found ends the program: "prog: error: FILE:RECORD: field 'history': test
 * item 123 of user 7 in the history", exit status 1.
 */
#ifndef ITREK_REC_LEAKCHECK_H
#define ITREK_REC_LEAKCHECK_H

#include "rec/data.h"
#include "rec/prompt.h"

typedef struct {
    const interactions *ia;
    const catalog *cat;           /* NULL: no title check */
    const prompt_templates *tmpl; /* how titles are shown (needed with cat) */
    const cand_set *cands;        /* NULL: no candidate check */
    bool diagnostic;              /* accept params.leaky (the labelled leak diagnostic) */
} leak_inputs;

typedef struct {
    char schema[32];
    long records;
    long history_ids;   /* history ids checked */
    long title_checks;  /* (record, forbidden item) title searches */
    long users;
    bool leaky;         /* the stream is the leak diagnostic (accepted because of `diagnostic`) */
} leak_report;

void leakcheck_stream(const char *path, const leak_inputs *in, leak_report *rep);

#endif
