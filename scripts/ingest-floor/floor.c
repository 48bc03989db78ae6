// The floor under `vigil bench --monitor`'s ingestion: the same rows (an activity record per
// event, a comment row for the 60% that are comment submissions), into the same schema with
// the same connection settings, through SQLite's C API with prepared statements, in
// transactions of 5,000 events. No JSON parsing, no account lookup, no sealing, no driver:
// only what SQLite itself must do to store the events. Built against the SQLite Vigil links
// (the amalgamation the libsqlite3-sys crate ships) by ./run next to this file.
//
// Usage: floor DB N [SQL ...]   (each extra argument runs once before the timed part)
#include "sqlite3.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static void ck(int rc, sqlite3*db){ if(rc!=SQLITE_OK&&rc!=SQLITE_DONE&&rc!=SQLITE_ROW){fprintf(stderr,"err %d %s\n",rc,sqlite3_errmsg(db));exit(1);} }
int main(int argc,char**argv){
  sqlite3*db; ck(sqlite3_open(argv[1],&db),db); int N=atoi(argv[2]);
  const char* pr="PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA foreign_keys=ON;PRAGMA secure_delete=ON;PRAGMA cache_size=-65536;PRAGMA temp_store=MEMORY;";
  ck(sqlite3_exec(db,pr,0,0,0),db);
  for(int i=3;i<argc;i++) ck(sqlite3_exec(db,argv[i],0,0,0),db);
  // users and the event
  sqlite3_stmt*s; char **users=malloc(sizeof(char*)*100000); int nu=0;
  ck(sqlite3_prepare_v2(db,"select id from users where kind='platform'",-1,&s,0),db);
  while(sqlite3_step(s)==SQLITE_ROW) users[nu++]=strdup((const char*)sqlite3_column_text(s,0));
  sqlite3_finalize(s);
  char ev[64]; ck(sqlite3_prepare_v2(db,"select id from events limit 1",-1,&s,0),db); sqlite3_step(s); strcpy(ev,(const char*)sqlite3_column_text(s,0)); sqlite3_finalize(s);
  sqlite3_stmt *ia,*ic;
  ck(sqlite3_prepare_v2(db,"insert into activity_log (id, user_id, kind, outcome, reason, occurred_at, ingested_at, user_agent, country, ref_id, ip_enc, ip_bidx, pii_key_version, bidx_key_version, details) values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) on conflict (id) do nothing",-1,&ia,0),db);
  ck(sqlite3_prepare_v2(db,"insert into comments (id,event_id,author_id,body,created_at) values (?,?,?,?,?)",-1,&ic,0),db);
  srand(5); long long t0=(long long)time(0)*1000000LL-86400000000LL; unsigned char blob[64];
  double t=now();
  for(int k=0;k<N;k+=5000){
    ck(sqlite3_exec(db,"BEGIN IMMEDIATE",0,0,0),db);
    long long ing=t0+86400000000LL+k;
    for(int i=k;i<k+5000&&i<N;i++){
      char id[40]; long long at=t0+(long long)i*(86400000000LL/N);
      snprintf(id,40,"%08llx-%04llx-7%03x-8%03x-%012x",(at/1000)>>16,(at/1000)&0xffff,rand()&0xfff,rand()&0xfff,rand());
      const char*u=users[rand()%nu]; int r=rand()%10;
      for(int j=0;j<64;j++)blob[j]=rand();
      if(r<6){ char body[128]; snprintf(body,128,"What a goal that was, absolutely brilliant play from the midfield %d",i%4096);
        sqlite3_bind_text(ic,1,id,-1,SQLITE_TRANSIENT);sqlite3_bind_text(ic,2,ev,-1,SQLITE_STATIC);sqlite3_bind_text(ic,3,u,-1,SQLITE_STATIC);
        sqlite3_bind_text(ic,4,body,-1,SQLITE_TRANSIENT);sqlite3_bind_int64(ic,5,at); ck(sqlite3_step(ic),db); sqlite3_reset(ic);}
      sqlite3_bind_text(ia,1,id,-1,SQLITE_TRANSIENT);sqlite3_bind_text(ia,2,u,-1,SQLITE_STATIC);
      sqlite3_bind_text(ia,3,r<6?"comment":r<9?"login":"profile_change",-1,SQLITE_STATIC);sqlite3_bind_text(ia,4,"success",-1,SQLITE_STATIC);
      sqlite3_bind_null(ia,5);sqlite3_bind_int64(ia,6,at);sqlite3_bind_int64(ia,7,ing);sqlite3_bind_text(ia,8,"Firefox",-1,SQLITE_STATIC);
      sqlite3_bind_text(ia,9,"GB",-1,SQLITE_STATIC); if(r<6)sqlite3_bind_text(ia,10,id,-1,SQLITE_TRANSIENT); else sqlite3_bind_null(ia,10);
      sqlite3_bind_blob(ia,11,blob,60,SQLITE_TRANSIENT);sqlite3_bind_blob(ia,12,blob+28,32,SQLITE_TRANSIENT);
      sqlite3_bind_int64(ia,13,1);sqlite3_bind_int64(ia,14,1);
      if(r>=6&&r<9) sqlite3_bind_text(ia,15,"{\"target\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",-1,SQLITE_STATIC); else sqlite3_bind_text(ia,15,"{}",-1,SQLITE_STATIC);
      ck(sqlite3_step(ia),db); sqlite3_reset(ia);
    }
    ck(sqlite3_exec(db,"COMMIT",0,0,0),db);
  }
  double el=now()-t; printf("%d events in %.3f s = %.0f/s\n",N,el,N/el);
  sqlite3_finalize(ia);sqlite3_finalize(ic);sqlite3_close(db);return 0;
}
