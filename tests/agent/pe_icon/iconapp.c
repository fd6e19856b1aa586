/* The Windows program the PE icon reader's tests read icons from: only its resources matter
   (app.rc, named.rc, seed.rc), so it is built without the C runtime, small, and does nothing. */
void entry(void) {}
